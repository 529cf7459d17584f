FROM alpine AS Builder
RUN true
