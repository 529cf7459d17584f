FROM alpine
RUN true
RUN false
CMD ["sh"]
