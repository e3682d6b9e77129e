# syntax=docker/dockerfile:1
# One image for every role: `serve` (the default), `migrate`, and later `worker`/`scheduler`.
#
#   docker build -t primetrade .
#   docker run -e SECRET_KEY=... -e DATABASE_URL=postgresql+asyncpg://... -p 8000:8000 primetrade

# --- builder: wheels for the project and its dependencies, installed into a venv ---------------
FROM python:3.11-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /build
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/venv/bin/pip wheel --wheel-dir /wheels . \
 && /opt/venv/bin/pip install --no-index --find-links /wheels primetrade

# --- runtime: the venv only, no compilers, no pip cache, not root ------------------------------
FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    ENVIRONMENT=production

# A numeric id, so Kubernetes can verify runAsNonRoot without resolving a name.
RUN groupadd --system --gid 10001 primetrade \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin primetrade \
 && mkdir -p /app/data \
 && chown 10001:10001 /app/data

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
USER 10001:10001
EXPOSE 8000

# /health is liveness only (no database); slim has no curl, Python does the request.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]

ENTRYPOINT ["primetrade"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
