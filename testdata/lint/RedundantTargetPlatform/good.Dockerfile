FROM alpine:3.20
FROM --platform=$BUILDPLATFORM alpine:3.20
