FROM node:22
RUN npm install -g typescript @angular/cli@18 && npm install
