FROM alpine:3.20 AS a
COPY --from=b /x /x
FROM alpine:3.20 AS b
COPY --from=a /y /y
FROM alpine:3.20
COPY --from=b /y /y
