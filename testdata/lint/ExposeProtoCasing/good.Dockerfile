FROM alpine
EXPOSE 53/udp 80
