FROM alpine:3.20
RUN apk add --no-cache curl git=2.45.2-r0
