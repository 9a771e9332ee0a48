#!/usr/bin/env bash
# make k8s-smoke: run deploy/k8s/ for real with `podman kube play`, on the image `make docker-smoke` built.
# The Deployment runs as written (security context, probes, resources, the /tmp emptyDir) except for
# two substitutions: the image (the local build instead of a registry's) and one replica (podman
# publishes a pod's containerPorts on the host, so two replicas would want the same host port). Checks:
# the pod becomes ready, a prediction is answered through the published port, and over gRPC through the
# published gRPC port (deploy/grpc-smoke.py from the host's venv: tritonclient.grpc ModelInfer, and
# grpc.health.v1 as the readiness probe asks it; podman does not run that probe), the container runs with
# the manifest's user, read-only root, no capabilities and memory limit, and `podman kube down` stops it
# within the grace period. Then docker-compose.yml the same way, when podman-compose is available.
# Prints what podman kube play ignores of the manifests.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/mnist-service:ci}
W=${W:-/tmp/container-ci}
PORT=8000  # the manifest's containerPort, published on the host by podman kube play
GRPC_PORT=8081  # the manifest's gRPC containerPort, published the same way
HOST_PYTHON=${HOST_PYTHON:-.venv/bin/python}  # the gRPC client: tritonclient[grpc], grpcio-health-checking (dev extra)
SEVEN=tests/data/seven.png
t() { echo "[$(date +%T)] $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

[ -f "$W/storage.conf" ] && export CONTAINERS_CONF="$W/containers.conf" CONTAINERS_STORAGE_CONF="$W/storage.conf"
command -v podman >/dev/null || fail "podman is not installed: run make docker-smoke first (it sets podman up)"
podman image exists "$IMAGE" || fail "no image $IMAGE: run make docker-smoke first (it builds it)"
if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then fail "something already listens on 127.0.0.1:$PORT"; fi
if (exec 3<>"/dev/tcp/127.0.0.1/$GRPC_PORT") 2>/dev/null; then fail "something already listens on 127.0.0.1:$GRPC_PORT"; fi
"$HOST_PYTHON" -c 'import tritonclient.grpc, grpc_health.v1.health_pb2' 2>/dev/null \
  || fail "$HOST_PYTHON cannot import tritonclient.grpc and grpc_health (make venv): the gRPC checks need them"

work=$(mktemp -d)
manifest="$work/mnist-service.yaml"
trap 'podman kube down "$manifest" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
sed -e "s|image: mnist-service:1.0.0.*|image: $IMAGE|" -e "s|replicas: 2|replicas: 1|" deploy/k8s/deployment.yaml > "$manifest"
grep -q "image: $IMAGE" "$manifest" && grep -q "replicas: 1" "$manifest" || fail "could not substitute the image and replicas"
{ echo "---"; cat deploy/k8s/service.yaml; } >> "$manifest"

t "podman kube play (Deployment + Service)"
started=$(date +%s.%N)
podman kube play "$manifest" 2>&1 | sed 's/^/  /'
pod=$(podman pod ps --format '{{.Name}}' | grep '^mnist-service' | head -1)
[ -n "$pod" ] || fail "no pod was started"
container=$(podman ps --filter "pod=$pod" --format '{{.Names}}' | grep -v infra | head -1)
ready=""
for _ in $(seq 240); do
  if curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then ready=yes; break; fi
  sleep 0.5
done
[ -n "$ready" ] || { podman logs "$container" | tail -20; fail "the pod was not ready within 2 minutes"; }
t "ready after $(since "$started") s (pod $pod, container $container)"
health=$(podman inspect "$container" --format '{{.State.Health.Status}}' 2>/dev/null || echo none)
t "podman's view of the probes: health status '$health'"

answer=$(curl -fsS -F "file=@$SEVEN" "http://127.0.0.1:$PORT/v1/predict")
echo "$answer" | grep -q '"digit":7' || fail "expected the digit 7 through the published port: $answer"
t "prediction through 127.0.0.1:$PORT: digit 7"
"$HOST_PYTHON" deploy/grpc-smoke.py "127.0.0.1:$GRPC_PORT" "$SEVEN" 7 | sed 's/^/  /' || fail "gRPC through 127.0.0.1:$GRPC_PORT"
t "gRPC through 127.0.0.1:$GRPC_PORT: health SERVING, ModelInfer digit 7"

user=$(podman exec "$container" id -u)
readonly_root=$(podman inspect "$container" --format '{{.HostConfig.ReadonlyRootfs}}')
caps=$(podman inspect "$container" --format '{{.EffectiveCaps}}')
memory=$(podman inspect "$container" --format '{{.HostConfig.Memory}}')
tmp_writable=$(podman exec "$container" sh -c 'touch /tmp/probe && echo yes' 2>/dev/null || echo no)
root_writable=$(podman exec "$container" sh -c 'touch /probe 2>/dev/null && echo yes || echo no')
t "uid $user, read-only root $readonly_root (writing / : $root_writable, /tmp: $tmp_writable), capabilities '$caps', memory limit $memory bytes"
[ "$user" = 10001 ] || fail "the container runs as uid $user, not the manifest's 10001"
[ "$readonly_root" = true ] && [ "$root_writable" = no ] && [ "$tmp_writable" = yes ] || fail "the root filesystem is not read-only with /tmp writable"
[ "$caps" = "[]" ] || fail "capabilities left: $caps"
[ "$memory" = $((1536 * 1024 * 1024)) ] || fail "memory limit $memory, not the manifest's 1536Mi"

t "podman kube down (terminationGracePeriodSeconds 30)"
stop_started=$(date +%s.%N)
podman kube down "$manifest" 2>&1 | sed 's/^/  /'
stopped=$(since "$stop_started")
t "stopped in $stopped s"
awk -v s="$stopped" 'BEGIN { exit !(s < 30) }' || fail "stopping took $stopped s, over the 30 s grace period"
curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && fail "still answering after podman kube down"
if (exec 3<>"/dev/tcp/127.0.0.1/$GRPC_PORT") 2>/dev/null; then fail "gRPC still listening after podman kube down"; fi

echo "podman kube play 4.3, of deploy/k8s/ (observed here):"
echo "  hpa.yaml and pdb.yaml: HorizontalPodAutoscaler and PodDisruptionBudget are not kinds it runs (not passed to it)"
echo "  service.yaml: accepted, but no load balancing; the pod's containerPorts are published on the host"
echo "  topologySpreadConstraints, the rolling-update strategy, revisionHistoryLimit: no scheduler, one pod"
echo "  the probes: mapped to a container healthcheck whose timer needs systemd, absent here (status '$health');"
echo "    readiness was checked by this script instead: /readyz, and the gRPC probe's health check (grpc-smoke.py)"
echo "  the preStop hook: not run (the stop took $stopped s, under its 5 s sleep); the stop itself is SIGTERM, then the grace period"
echo "  automountServiceAccountToken, enableServiceLinks: no API server to speak of"

compose=$(command -v podman-compose || true)
if [ -z "$compose" ]; then  # not packaged here: the pip package, in the container scratch area's venv
  [ -x "$W/venv/bin/podman-compose" ] || { python3 -m venv "$W/venv" 2>/dev/null; "$W/venv/bin/pip" install -q podman-compose || true; }
  [ -x "$W/venv/bin/podman-compose" ] && compose="$W/venv/bin/podman-compose"
fi
if [ -n "$compose" ]; then
  t "docker-compose.yml with podman-compose"
  sed -e "/^    build: \.$/d" -e "s|image: mnist-service:latest|image: $IMAGE|" docker-compose.yml > "$work/docker-compose.yml"
  (cd "$work" && "$compose" -f docker-compose.yml up -d >/dev/null 2>&1) || fail "podman-compose up failed"
  for _ in $(seq 120); do curl -fsS "http://127.0.0.1:8000/readyz" >/dev/null 2>&1 && break; sleep 0.5; done
  answer=$(curl -fsS -F "file=@$SEVEN" "http://127.0.0.1:8000/v1/predict") || fail "compose: no answer"
  grpc_ok=yes
  "$HOST_PYTHON" deploy/grpc-smoke.py "127.0.0.1:8081" "$SEVEN" 7 >"$work/compose-grpc" 2>&1 || grpc_ok=no
  (cd "$work" && "$compose" -f docker-compose.yml down >/dev/null 2>&1)
  echo "$answer" | grep -q '"digit":7' || fail "compose: expected the digit 7: $answer"
  [ "$grpc_ok" = yes ] || { cat "$work/compose-grpc"; fail "compose: gRPC on 127.0.0.1:8081"; }
  t "compose: digit 7, and over gRPC on 127.0.0.1:8081"
else
  fail "podman-compose could not be installed: docker-compose.yml was not run"
fi
t "k8s-smoke: ok"
