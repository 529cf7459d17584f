ARG VERSION=1.0
FROM scratch
COPY app-${VERSION} /app
CMD ["/app"]
