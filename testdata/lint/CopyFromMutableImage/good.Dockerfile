FROM alpine:3.20 AS build
FROM alpine:3.20
COPY --from=build /etc /etc
COPY --from=nginx:1.27 /etc/nginx /etc/nginx
COPY --from=busybox@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb /bin/busybox /bin/
