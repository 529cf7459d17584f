FROM alpine:3.20 as builder
RUN true
