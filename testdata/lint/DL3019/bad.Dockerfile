FROM alpine:3.20
RUN apk add --update curl=8.9.1-r0
