FROM debian:12
RUN curl -fsSLO https://example.com/a
COPY x /x
RUN wget -q https://example.com/b
