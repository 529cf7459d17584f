FROM debian:12
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN curl -fsSL https://example.com/key | gpg --dearmor -o /k.gpg
FROM debian:12
RUN set -eux -o pipefail; curl -fsSL https://example.com/a | tar -x
RUN echo 'a | b' > /notes && test -f x || echo missing
