FROM python:3.12
RUN pip install --no-cache-dir requests django==5.0 git+https://github.com/psf/black
