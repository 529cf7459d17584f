FROM alpine:3.20
ENV API_TOKEN=abc
ARG NPM_TOKEN
RUN echo "//registry/:_authToken=$NPM_TOKEN" > .npmrc
