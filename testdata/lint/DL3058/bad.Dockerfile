FROM alpine:3.20
LABEL maintainer="Ops <ops@example.org>"
