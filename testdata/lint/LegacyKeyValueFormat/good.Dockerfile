FROM alpine:3.20
ENV LANG=C.UTF-8
LABEL maintainer=jane
