FROM debian:12 AS base
FROM alpine:3.20
COPY --from=base / /
