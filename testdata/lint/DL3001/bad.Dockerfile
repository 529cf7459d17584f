FROM debian:12
RUN service nginx start && ps aux
