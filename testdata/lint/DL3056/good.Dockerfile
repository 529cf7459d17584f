FROM alpine:3.20
LABEL org.opencontainers.image.version=2.1.0-rc.1
