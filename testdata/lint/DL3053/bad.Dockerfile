FROM alpine:3.20
LABEL org.opencontainers.image.created="2024-01-02 03:04:05"
