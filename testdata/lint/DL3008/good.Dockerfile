FROM debian:12
ARG CURL=curl=7.88.1-10+deb12u12
RUN apt-get update && apt-get install -y --no-install-recommends "$CURL" $FROM_BASE ./local.deb \
 && rm -rf /var/lib/apt/lists/*
