FROM alpine:3.20
LABEL org.opencontainers.image.revision=9fceb02
