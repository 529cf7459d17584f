FROM python:3.12
RUN pip install --no-cache-dir requests==2.32.3 'django>=5,<6' git+https://github.com/psf/black@24.4.2 ./pkg . \
 && pip install --no-cache-dir -r requirements.txt \
 && python -m pip install --no-cache-dir -c constraints.txt flask
