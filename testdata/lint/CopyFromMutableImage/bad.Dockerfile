FROM alpine:3.20
COPY --from=nginx /etc/nginx /etc/nginx
RUN --mount=from=busybox:latest,target=/bb /bb/bin/true
