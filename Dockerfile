# mnist-service: the FastAPI app and the committed model on python:3.11-slim with tensorflow-cpu.
#   docker build -t mnist-service .  &&  docker run --rm -p 8000:8000 mnist-service
# Checked by `make docker-smoke` (deploy/container-smoke.sh): hadolint, build, run read-only, predict, stop.

# ---- build: the runtime dependencies in a venv, trimmed; nothing of this stage but /opt/venv is kept
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
# binutils for `strip` only, in this stage only. Not pinned: Debian replaces the exact version at every
# point release, which would break the build, and none of it reaches the final image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends binutils \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
# Only pyproject.toml first: the dependency layer is rebuilt when the dependencies change, not the code.
COPY pyproject.toml ./
# The [project] dependencies of pyproject.toml (one list, no copy to drift) minus matplotlib, which only
# training/plots.py imports (75 MB with its own dependencies). Then drop what serving never loads:
# libclang (TensorFlow's, for building ops: 60 MB) and TensorFlow's C++ headers (290 MB); and strip the
# symbol tables from TensorFlow's shared libraries (240 MB; the dynamic symbols they link with stay).
# A venv without pip (the base image's pip installs into it), checked by importing TensorFlow and Keras.
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(d for d in deps if not d.startswith('matplotlib')))" > requirements.txt \
    && python -m venv --without-pip /opt/venv \
    && pip --python /opt/venv/bin/python install --no-cache-dir -r requirements.txt \
    && pip --python /opt/venv/bin/python uninstall -y libclang \
    && rm -rf /opt/venv/lib/python3.11/site-packages/tensorflow/include \
    && find /opt/venv/lib/python3.11/site-packages/tensorflow -name '*.so*' -type f -exec strip --strip-unneeded {} + \
    && TF_CPP_MIN_LOG_LEVEL=2 /opt/venv/bin/python -c "import tensorflow, keras; print('tensorflow', tensorflow.__version__, 'keras', keras.__version__)"

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
# (Keras's config dir via HOME, several workers' metrics), so the root filesystem can be read-only.
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
