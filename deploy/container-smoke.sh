#!/usr/bin/env bash
# Lint the Dockerfile, build the image, run it, wait for /readyz, POST a digit and check the answer,
# then run it again with a read-only root filesystem (as Kubernetes will) and check that too.
# Uses ../shared/container/build-and-smoke.sh (podman, no Docker engine needed); fails if it can't run.
set -euo pipefail
cd "$(dirname "$0")/.."
SMOKE=../shared/container/build-and-smoke.sh
IMAGE=${IMAGE:-localhost/mnist-service:ci}
if [ ! -x "$SMOKE" ]; then
  echo "FAIL: $SMOKE not found; build with 'docker build -t mnist-service .' where a Docker engine runs" >&2
  exit 1
fi
if ! command -v podman >/dev/null && ! command -v apt-get >/dev/null; then
  echo "FAIL: neither podman nor apt-get (to install it) is available: the image cannot be built here" >&2
  exit 1
fi
check='
  set -e
  answer=$(curl -fsS -F file=@tests/data/seven.png "$BASE/v1/predict")
  echo "answer: $answer"
  echo "$answer" | grep -q "\"digit\":7" || { echo "FAIL: expected digit 7"; exit 1; }
  echo "image size: $(podman image inspect --format "{{.Size}}" '"$IMAGE"' | numfmt --to=iec)"
  echo "memory after one request: $(podman stats --no-stream --format "{{.MemUsage}}" app-ci)"
  podman rm -f -t 0 app-ro >/dev/null 2>&1 || true
  podman run -d --name app-ro --read-only --tmpfs /tmp -p 127.0.0.1:18081:8000 '"$IMAGE"' >/dev/null
  trap "podman rm -f -t 0 app-ro >/dev/null 2>&1 || true" EXIT
  for i in $(seq 1 300); do curl -fsS http://127.0.0.1:18081/readyz >/dev/null 2>&1 && break; sleep 0.2; done
  curl -fsS -F file=@tests/data/seven.png http://127.0.0.1:18081/v1/predict | grep -q "\"digit\":7" \
    || { podman logs app-ro | tail -20; echo "FAIL: read-only container"; exit 1; }
  echo "read-only root filesystem: ok"
  podman stop -t 15 app-ro >/dev/null
  podman logs app-ro 2>&1 | grep -q "Finished server process" || { echo "FAIL: no graceful shutdown"; exit 1; }
  echo "graceful shutdown on SIGTERM: ok"
  podman inspect --format "{{.Config.User}}" '"$IMAGE"' | grep -qx 10001 || { echo "FAIL: not non-root"; exit 1; }
'
PROBE=/readyz IMAGE="$IMAGE" SMOKE_CMD="$check" "$SMOKE" .
