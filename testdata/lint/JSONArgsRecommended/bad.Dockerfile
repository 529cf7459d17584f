FROM alpine:3.20
ENTRYPOINT my-server --port 80
