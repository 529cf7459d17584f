FROM alpine:3.20 AS a
RUN touch /x
FROM a AS b
COPY --from=a /x /y
FROM alpine:3.20
COPY --from=b /y /y
