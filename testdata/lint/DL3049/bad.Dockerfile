FROM alpine:3.20 AS build
LABEL maintainer=ops
FROM alpine:3.20
LABEL org.opencontainers.image.source=https://example.org/app
