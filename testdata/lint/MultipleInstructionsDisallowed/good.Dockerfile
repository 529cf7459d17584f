FROM alpine AS one
CMD ["a"]
FROM alpine
CMD ["b"]
