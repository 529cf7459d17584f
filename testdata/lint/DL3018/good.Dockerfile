FROM alpine:3.20
ENV DEPS="make=4.4.1-r2"
RUN apk add --no-cache --virtual .build-deps curl=8.9.1-r0 $DEPS $FROM_BASE 'bash>5' ./local.apk
