FROM alpine:3.20
RUN mkdir /app && chown 1000 /app
COPY app /app
RUN --mount=type=cache,target=/root/.cache echo built
RUN echo a && echo b && echo c
