FROM alpine:3.20
ADD rootfs.tar.gz /
ADD https://example.com/tool /usr/bin/tool
COPY config.json /etc/app/
