FROM debian:12
RUN curl -fsSLO https://example.com/a
FROM debian:12
RUN wget -q https://example.com/b
