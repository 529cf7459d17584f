FROM python:3.12
RUN pip install requests==2.32.3
