FROM alpine:3.20
EXPOSE 53/udp 80
