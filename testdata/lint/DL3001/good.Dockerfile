FROM debian:12
RUN echo ps > /etc/motd && printf 'kill\n'
