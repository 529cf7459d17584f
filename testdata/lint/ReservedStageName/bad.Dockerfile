FROM alpine AS scratch
RUN true
