FROM alpine:3.20
WORKDIR /app
WORKDIR src
FROM mcr.microsoft.com/windows/nanoserver:ltsc2022
WORKDIR C:\\app
