FROM quay.io/team/app:1.0 AS base
FROM ghcr.io/team/tool:2.0
