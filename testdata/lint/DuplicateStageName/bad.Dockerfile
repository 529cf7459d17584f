FROM alpine AS build
RUN true
FROM debian AS build
RUN true
