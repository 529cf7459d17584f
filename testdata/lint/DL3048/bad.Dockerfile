FROM alpine:3.20
LABEL Maintainer=jane com.docker.thing=1 my..key=2
