FROM alpine:3.20
COPY secrets.env /etc/app/
ADD ./node_modules /srv/node_modules
