FROM alpine:3.20
RUN cd /tmp && echo hi > x
