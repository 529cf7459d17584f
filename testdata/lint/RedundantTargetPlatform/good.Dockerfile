FROM alpine
FROM --platform=$BUILDPLATFORM alpine
