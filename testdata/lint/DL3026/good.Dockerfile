# docker.io (named or not), a *.gcr.io host, a stage, scratch: all allowed.
FROM alpine:3.20 AS base
FROM docker.io/library/debian:12
FROM eu.gcr.io/project/app:1.0
FROM base
FROM scratch
