FROM alpine:3.20
LABEL org.opencontainers.image.created=2024-01-02T03:04:05+01:00
