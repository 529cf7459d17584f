FROM alpine:3.20 AS build
ARG NPM_TOKEN
RUN echo "//registry/:_authToken=$NPM_TOKEN" > /.npmrc
FROM alpine:3.20
RUN --mount=type=secret,id=api_token,env=API_TOKEN true
ARG GIT_TOKEN
