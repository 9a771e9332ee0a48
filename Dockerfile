# mnist-service: the FastAPI app and the committed model on python:3.11-slim (no TensorFlow: see below).
#   docker build -t mnist-service .  &&  docker run --rm -p 8000:8000 -p 8081:8081 mnist-service
# Checked by `make docker-smoke` (deploy/container-smoke.sh): hadolint, build, run read-only, predict, stop.

# ---- build: the package and its serving dependencies in a venv; nothing of this stage but /opt/venv is kept
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /build
# The dependencies first, from pyproject.toml alone (with an empty app package to install), so that this
# layer is rebuilt when the dependencies change, not the code. [project].dependencies are what serving
# needs: no TensorFlow, Keras or matplotlib (the `train` extra). A venv without pip (the base image's
# pip installs into it).
# Bytecode: the root filesystem is read-only and PYTHONDONTWRITEBYTECODE is set, so what is not compiled here
# is compiled again at every start, in every process (without any .pyc the server takes twice as long to be
# ready). So everything is compiled, once (no optimisation levels), except the dependencies' own test suites
# (numpy's, for one), which the server never imports: 9.6 MB of .pyc. Hence pip's --no-compile, then compileall.
COPY pyproject.toml ./
RUN mkdir app && touch app/__init__.py README.md \
    && python -m venv --without-pip /opt/venv \
    && pip --python /opt/venv/bin/python install --no-cache-dir --no-compile . \
    && pip --python /opt/venv/bin/python uninstall --yes mnist-service \
    && /opt/venv/bin/python -m compileall -q -j 0 -x '/tests?/' /opt/venv/lib
# Then the package itself: app/ only (training/ is not in the build context).
COPY README.md ./
COPY app ./app
RUN pip --python /opt/venv/bin/python install --no-cache-dir --no-deps . \
    && /opt/venv/bin/python -c "import app.main, h5py, numpy; print('numpy', numpy.__version__, 'h5py', h5py.__version__)"

# ---- the image: base + the venv (dependencies and the app package) + the committed model, as a non-root user
FROM python:3.11-slim
LABEL org.opencontainers.image.title="mnist-service" \
      org.opencontainers.image.description="Handwritten-digit recognition: a Keras MLP trained on MNIST, served by FastAPI" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --gid 10001 app \
    && useradd --uid 10001 --gid 10001 --no-log-init --no-create-home --home-dir /tmp --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv/mnist-service
COPY models/mnist-mlp.keras models/mnist-mlp.json models/mnist-mlp.digit.keras models/mnist-mlp.reading.json ./models/
# Every setting is an environment variable (README "Configuration"). Nothing is written outside /tmp
# (several workers' metrics), so the root filesystem can be read-only.
ENV PATH=/opt/venv/bin:$PATH \
    MNIST_MODEL_PATH=/srv/mnist-service/models/mnist-mlp.keras \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    HOST=0.0.0.0 \
    PORT=8000 \
    MNIST_GRPC_PORT=8081 \
    WEB_CONCURRENCY=1
USER 10001:10001
# REST, and the Open Inference Protocol over gRPC (on HOST too: MNIST_GRPC_HOST is unset)
EXPOSE 8000 8081
# Liveness with Python's own urllib: the image has no curl. (podman keeps it only with --format docker.)
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"]
# Exec form: python is PID 1 and gets SIGTERM; uvicorn finishes in-flight requests (up to 10 s) and exits 0.
CMD ["python", "-m", "app"]
