FROM ruby:3.3
RUN gem install bundler:2.5.16 rails:7.1.3 && gem install -v 1.16.0 nokogiri
