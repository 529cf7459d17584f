FROM alpine:3.20
LABEL maintainer=jane org.opencontainers.image.title=app
