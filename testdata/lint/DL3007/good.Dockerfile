FROM ubuntu:24.04
FROM latest/ubuntu:24.04
