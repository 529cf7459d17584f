FROM alpine:3.20
RUN true
run false
CMD ["sh"]
