FROM alpine:3.20
USER 1000:1000
USER $APP_UID
FROM mcr.microsoft.com/windows/nanoserver:ltsc2022
USER ContainerUser
