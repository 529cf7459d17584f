FROM alpine:3.20
CMD ["a"]
FROM alpine:3.20
CMD ["b"]
