# mnist-service: the FastAPI app and the committed model on python:3.11-slim (no TensorFlow: see below).
#   docker build -t mnist-service .  &&  docker run --rm -p 8000:8000 mnist-service
# Checked by `make docker-smoke` (deploy/container-smoke.sh): hadolint, build, run read-only, predict, stop.

# ---- build: the serving dependencies in a venv; nothing of this stage but /opt/venv is kept
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /build
# Only pyproject.toml first: the dependency layer is rebuilt when the dependencies change, not the code.
COPY pyproject.toml ./
# The [project] dependencies of pyproject.toml (one list, no copy to drift) minus what only training
# needs: TensorFlow and Keras (the service reads the weights from the .keras archive itself; ~1 GB) and
# matplotlib (training/plots.py; 75 MB). A venv without pip (the base image's pip installs into it),
# checked by importing what the service imports.
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(d for d in deps if not d.startswith(('tensorflow', 'keras', 'matplotlib'))))" > requirements.txt \
    && python -m venv --without-pip /opt/venv \
    && pip --python /opt/venv/bin/python install --no-cache-dir -r requirements.txt \
    && /opt/venv/bin/python -c "import fastapi, h5py, numpy, PIL, prometheus_client, uvicorn; print('numpy', numpy.__version__, 'h5py', h5py.__version__)"

# ---- the image: base + venv + the service's code + the committed model, run as a non-root user
FROM python:3.11-slim
LABEL org.opencontainers.image.title="mnist-service" \
      org.opencontainers.image.description="Handwritten-digit recognition: a Keras MLP trained on MNIST, served by FastAPI" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --gid 10001 app \
    && useradd --uid 10001 --gid 10001 --no-log-init --no-create-home --home-dir /tmp --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
# app/, training/ and models/ side by side, as in the repository, so app/config.py finds the model
# without MNIST_MODEL_PATH. The app imports training.data only (tests/test_deploy.py checks that).
WORKDIR /srv/mnist-service
COPY app ./app
COPY training/__init__.py training/data.py ./training/
COPY models/mnist-mlp.keras models/mnist-mlp.json ./models/
RUN python -m compileall -q app training
# Every setting is an environment variable (README "Configuration"). Nothing is written outside /tmp
# (several workers' metrics), so the root filesystem can be read-only.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/srv/mnist-service \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    HOST=0.0.0.0 \
    PORT=8000 \
    WEB_CONCURRENCY=1
USER 10001:10001
EXPOSE 8000
# Liveness with Python's own urllib: the image has no curl. (podman keeps it only with --format docker.)
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"]
# Exec form: python is PID 1 and gets SIGTERM; uvicorn finishes in-flight requests (up to 10 s) and exits 0.
CMD ["python", "-m", "app"]
