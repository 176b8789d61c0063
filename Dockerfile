# terradream image: `terradream serve` by default; the same image runs seed, export, worker and `dask scheduler`.
# Leaflet comes from npm in a build stage (the viewer works offline, no CDN; the map clients the tests drive are
# devDependencies and stay out); the runtime is python:3.11-slim.
# TORCH_BUILD picks the torch wheel: cpu (default) is PyTorch's CPU-only build, for API servers and jobs that do not
# run the model on a GPU (a far smaller image); cuda is PyPI's build with the CUDA libraries, for GPU generators and
# workers. Both install the torch, dask and distributed releases pinned in constraints.txt.

FROM node:20-slim AS frontend
WORKDIR /src/terradream/frontend
COPY terradream/frontend/package.json terradream/frontend/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM python:3.11-slim
ARG TORCH_BUILD=cpu
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
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
COPY pyproject.toml README.md constraints.txt ./
COPY terradream ./terradream
COPY --from=frontend /src/terradream/frontend/node_modules ./terradream/frontend/node_modules
# cpu: torch from the CPU index first (its +cpu local version satisfies the pin), so the install below keeps it.
RUN case "$TORCH_BUILD" in \
      cpu) pip install --index-url "$TORCH_CPU_INDEX" "$(grep '^torch==' constraints.txt)" ;; \
      cuda) ;; \
      *) echo "TORCH_BUILD must be cpu or cuda, not $TORCH_BUILD" >&2; exit 1 ;; \
    esac \
    && pip install --constraint constraints.txt '.[cluster]' \
    && useradd --system --uid 10001 --home-dir /var/cache/terradream terradream \
    && mkdir -p /var/cache/terradream /data \
    && chown terradream /var/cache/terradream /data

USER terradream
EXPOSE 8000
ENTRYPOINT ["terradream"]
CMD ["serve"]
