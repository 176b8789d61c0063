# terradream image: `terradream serve` by default; the same image runs `seed` and `export`.
# Leaflet comes from npm in a build stage (the viewer works offline, no CDN; the map clients the tests drive are
# devDependencies and stay out); the runtime is python:3.11-slim.

FROM node:20-slim AS frontend
WORKDIR /src/terradream/frontend
COPY terradream/frontend/package.json terradream/frontend/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TERRADREAM_HOST=0.0.0.0 \
    TERRADREAM_PORT=8000 \
    TERRADREAM_CACHE=/var/cache/terradream
# tcmalloc speeds up torch on the CPU (the Makefile preloads it the same way).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libtcmalloc-minimal4 \
    && rm -rf /var/lib/apt/lists/*
ENV LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4

WORKDIR /app
COPY pyproject.toml README.md ./
COPY terradream ./terradream
COPY --from=frontend /src/terradream/frontend/node_modules ./terradream/frontend/node_modules
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /var/cache/terradream terradream \
    && mkdir -p /var/cache/terradream /data \
    && chown terradream /var/cache/terradream /data

USER terradream
EXPOSE 8000
ENTRYPOINT ["terradream"]
CMD ["serve"]
