FROM alpine:3.20
MAINTAINER jane@example.com
