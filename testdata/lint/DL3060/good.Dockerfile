FROM node:22
RUN yarn install && yarn cache clean
RUN yarn --version
