FROM alpine:3.20
COPY app.py /srv/app/
WORKDIR /srv
COPY app.py app/
FROM alpine:3.20 AS base
WORKDIR /src
FROM base
COPY . .
