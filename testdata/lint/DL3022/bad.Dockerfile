FROM alpine:3.20
COPY --from=build /app /app
FROM alpine:3.20 AS build
