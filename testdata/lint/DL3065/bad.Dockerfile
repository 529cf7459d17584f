FROM --platform=$TARGETPLATFORM alpine:3.20 AS build
FROM --platform=${TARGETPLATFORM} alpine:3.20
