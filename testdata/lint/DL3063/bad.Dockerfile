FROM alpine:3.20 AS context
RUN true
FROM alpine:3.20 AS scratch
