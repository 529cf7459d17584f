FROM alpine:3.20
HEALTHCHECK CMD ["true"]
FROM alpine:3.20
HEALTHCHECK CMD ["true"]
