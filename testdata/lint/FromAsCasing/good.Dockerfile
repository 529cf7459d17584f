FROM alpine:3.20 AS builder
RUN true
