FROM scratch AS image
COPY app /app
USER 65534
ENTRYPOINT ["/app"]
FROM scratch
COPY --from=image /app /out/app
