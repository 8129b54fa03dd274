# One image for every service; the command picks the service (see docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 LANLING_VAR=/var/lib/lanling
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY pyproject.toml README.md ./
COPY services ./services
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e . && mkdir -p /var/lib/lanling && chown nobody /var/lib/lanling
USER nobody
CMD ["lanling", "--help"]
