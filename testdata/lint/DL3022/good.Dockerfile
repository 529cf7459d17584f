FROM alpine:3.20 AS build
FROM alpine:3.20
COPY --from=build /app /app
COPY --from=0 /etc/os-release /
COPY --from=nginx:1.27 /etc/nginx /etc/nginx
