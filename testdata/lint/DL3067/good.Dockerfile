FROM scratch AS bin
COPY tool /tool
FROM alpine:3.20
COPY --from=bin / /usr/local/bin/
