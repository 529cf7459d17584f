FROM ruby:3.3
RUN gem install bundler rails:7.1.3
