FROM alpine:3.20
LABEL org.opencontainers.image.version=v2.1
