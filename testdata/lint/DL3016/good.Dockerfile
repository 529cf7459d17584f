FROM node:22
RUN npm install -g typescript@5.5.4 @angular/cli@18.2.0 ./local-pkg && npm install && npm ci
