FROM alpine:3.20
RUN mkdir /app
RUN chown 1000 /app
