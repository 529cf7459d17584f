FROM alpine:3.20
RUN echo old
FROM alpine:3.20
CMD ["true"]
