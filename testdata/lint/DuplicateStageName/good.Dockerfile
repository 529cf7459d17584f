FROM alpine:3.20 AS build
RUN true
FROM debian:12 AS test
RUN true
