FROM alpine AS base
RUN true
