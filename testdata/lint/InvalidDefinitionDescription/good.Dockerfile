# check=experimental=InvalidDefinitionDescription
# base is the image the build starts from
FROM alpine:3.20 AS base

# a note, not a description

ARG VERSION=1.0
# APP_NAME names the binary
ARG APP_NAME=app
