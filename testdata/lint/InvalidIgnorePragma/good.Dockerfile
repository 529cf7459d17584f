FROM alpine:3.20
# kiln ignore=DL3018 the mirror serves one version of each package
RUN apk add --no-cache curl
# hadolint ignore=DL3018
RUN apk add --no-cache git
