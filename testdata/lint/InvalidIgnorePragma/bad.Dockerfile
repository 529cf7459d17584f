FROM alpine:3.20
# kiln ignore=DL3018
RUN apk add --no-cache curl
# kiln ignore=DL9999 no such rule
RUN apk add --no-cache git=2.45.2-r0
