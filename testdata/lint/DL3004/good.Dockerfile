FROM debian:12
RUN echo sudo > /etc/hint && gosu nobody true
