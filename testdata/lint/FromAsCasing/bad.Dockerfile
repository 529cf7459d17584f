FROM alpine as builder
RUN true
