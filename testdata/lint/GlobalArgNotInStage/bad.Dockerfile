ARG VERSION=1.0
FROM scratch
COPY app /app
RUN /app --version=${VERSION}
