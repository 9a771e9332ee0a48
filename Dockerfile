# mnist-service: the FastAPI app and the committed model, on python:3.11-slim with tensorflow-cpu.
# Build: docker build -t mnist-service .   Run: docker run -p 8000:8000 mnist-service

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY training ./training
# The service and its runtime dependencies into a venv (no pip inside it). Dropped as unused when
# serving: matplotlib and its dependencies (training plots), libclang and TensorFlow's C++ headers
# (building extensions), 350 MB together.
RUN python -m venv --without-pip /opt/venv \
    && pip --python /opt/venv/bin/python install --no-cache-dir . \
    && pip --python /opt/venv/bin/python uninstall -y matplotlib contourpy cycler fonttools kiwisolver pyparsing libclang \
    && rm -rf /opt/venv/lib/python3.11/site-packages/tensorflow/include \
    && find /opt/venv -depth -type d \( -name tests -o -name __pycache__ \) -exec rm -rf {} + \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib

FROM python:3.11-slim
LABEL org.opencontainers.image.title="mnist-service" \
      org.opencontainers.image.description="Handwritten-digit recognition: a Keras MLP served by FastAPI"
RUN useradd --uid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
COPY models/mnist-mlp.keras models/mnist-mlp.json /srv/models/
# Everything is configurable at run time (see README "Configuration"); /tmp is the only place written
# (Keras's config dir, the metrics of several workers), so the root filesystem can be read-only.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    KERAS_HOME=/tmp/.keras \
    MNIST_MODEL_PATH=/srv/models/mnist-mlp.keras \
    HOST=0.0.0.0 \
    PORT=8000 \
    WEB_CONCURRENCY=1
USER 10001
WORKDIR /tmp
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"]
CMD ["python", "-m", "app"]
