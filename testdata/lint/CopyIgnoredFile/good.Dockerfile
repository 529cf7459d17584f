FROM alpine:3.20
COPY . /src/
COPY app.py /srv/
COPY --from=busybox:1.36 secrets.env /x
