FROM alpine:3.20
ARG VERSION=1
ENV APP_HOME=/srv KEY_SERVER=keys.example.org
ENV MY_AWS_ACCESS_KEY_ID_FILE=/run/secrets/id
