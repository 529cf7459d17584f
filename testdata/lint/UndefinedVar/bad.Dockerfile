FROM alpine:3.20
ARG VERSION=1.0
COPY app-${VERSON}.tar /app/
FROM scratch
COPY app $DEST
