FROM alpine:3.20
ADD config.json /etc/app/
