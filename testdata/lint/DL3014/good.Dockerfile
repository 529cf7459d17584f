FROM debian:12
RUN apt-get update && apt-get install -y --no-install-recommends curl=7.88.1-10+deb12u12 \
 && apt-get -qq install --no-install-recommends git=1:2.39.5-0+deb12u2 \
 && apt-get install --assume-yes --no-install-recommends make=4.3-4.1 && rm -rf /var/lib/apt/lists/*
