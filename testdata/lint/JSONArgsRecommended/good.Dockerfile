FROM alpine
ENTRYPOINT ["my-server", "--port", "80"]
