FROM alpine:3.20
WORKDIR /tmp
RUN echo 'cd /tmp' > notes && ./cdrom-check --cd
