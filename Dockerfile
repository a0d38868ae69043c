# syntax=docker/dockerfile:1
# Build: docker build -t loyalty .   Run: see deploy/docker-compose.yml
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update && apt-get install -y --no-install-recommends gcc && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The pinned, hash-checked dependencies first (their own layer, rebuilt only when the lock
# changes), then the service alone: `make lock` regenerates requirements.lock.
COPY requirements.lock ./
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY service ./service
RUN /opt/venv/bin/pip install --no-deps .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 loyalty
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    NUMBA_CACHE_DIR=/opt/numba-cache \
    LOYALTY_HOST=0.0.0.0 \
    LOYALTY_PORT=8000 \
    LOYALTY_ENVIRONMENT=production \
    LOYALTY_DATA_DIR=/tmp/loyalty
# Compile the rule kernels at build time: `loyalty serve` loads them from this cache once,
# before it forks its workers (service/supervisor.py).
RUN mkdir -p /opt/numba-cache && python -c "from service import kernels; kernels.warm_up()" \
    && chown -R loyalty:loyalty /opt/numba-cache
USER loyalty
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"
CMD ["loyalty", "serve"]
