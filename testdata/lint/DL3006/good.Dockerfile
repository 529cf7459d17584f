ARG BASE=ubuntu:24.04
FROM ${BASE} AS base
FROM base
FROM scratch
FROM ubuntu@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
