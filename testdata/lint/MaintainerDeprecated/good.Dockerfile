FROM alpine
LABEL org.opencontainers.image.authors="Jane Doe <jane@example.com>"
