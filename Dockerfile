FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 BRIEFING_HOME=/app/var
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY templates ./templates
COPY config ./config
RUN pip install . && useradd --create-home briefing && mkdir -p /app/var && chown briefing /app/var && chmod 700 /app/var
USER briefing
VOLUME ["/app/var"]


ENTRYPOINT ["briefing"]
CMD ["run"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz')"]
