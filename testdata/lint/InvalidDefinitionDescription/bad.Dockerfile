# check=experimental=InvalidDefinitionDescription
# the base for the build
FROM alpine:3.20 AS base
# version of the app
ARG VERSION=1.0
