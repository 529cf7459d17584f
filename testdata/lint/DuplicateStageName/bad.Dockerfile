FROM alpine:3.20 AS build
RUN true
FROM debian:12 AS build
RUN true
