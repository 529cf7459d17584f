FROM alpine:3.20
LABEL org.opencontainers.image.revision=v1.2.3
