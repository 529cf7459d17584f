FROM debian:12
RUN wget --progress=dot:giga https://example.com/a && wget -q https://example.com/b && wget -nv https://example.com/c && wget -o /dev/null https://example.com/d
