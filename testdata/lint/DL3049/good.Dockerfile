FROM alpine:3.20
LABEL maintainer=ops \
      org.opencontainers.image.source=https://example.org/app
