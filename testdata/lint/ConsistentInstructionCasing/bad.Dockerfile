FROM alpine
RUN true
run false
CMD ["sh"]
