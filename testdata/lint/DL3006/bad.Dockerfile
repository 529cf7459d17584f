FROM ubuntu
FROM ubuntu:24.04 AS build
