FROM alpine:3.20
RUN touch /x
FROM alpine:3.20 AS test
RUN echo test
FROM alpine:3.20
COPY --from=0 /x /x
