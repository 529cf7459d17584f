FROM alpine:3.20
LABEL org.opencontainers.image.url=https://example.org
