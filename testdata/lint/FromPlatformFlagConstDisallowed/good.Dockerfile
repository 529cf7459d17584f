FROM --platform=$BUILDPLATFORM alpine:3.20
# A stage named for its platform (BuildKit does not warn: one of several, each constant).
FROM --platform=linux/arm64 alpine:3.20 AS build-arm64
FROM --platform=linux/amd64 alpine:3.20 AS linux-builder
