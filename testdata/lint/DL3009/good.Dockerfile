FROM debian:12
RUN apt-get update && apt-get install -y --no-install-recommends curl=7.88.1-10+deb12u12 && rm -rf /var/lib/apt/lists/*
RUN --mount=type=cache,target=/var/lib/apt apt-get update && apt-get install -y --no-install-recommends git=1:2.39.5-0+deb12u2
RUN apt-get update && apt-get install -y --no-install-recommends make=4.3-4.1 && apt-get dist-clean
FROM debian:12 AS builder
RUN apt-get update && apt-get install -y --no-install-recommends gcc=4:12.2.0-3
FROM scratch
COPY --from=builder /usr/bin/gcc /gcc
