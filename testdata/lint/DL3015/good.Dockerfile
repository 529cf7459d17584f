FROM debian:12
RUN echo 'APT::Install-Recommends "false";' > /etc/apt/apt.conf.d/99norecommends
FROM debian:12
RUN apt-get update && apt-get install -y --no-install-recommends curl=7.88.1-10+deb12u12 \
 && apt-get install -y -o APT::Install-Recommends=false git=1:2.39.5-0+deb12u2 && rm -rf /var/lib/apt/lists/*
