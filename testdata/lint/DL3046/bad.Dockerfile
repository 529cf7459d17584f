FROM debian:12
RUN useradd -u 123456789 app
