#!/usr/bin/env bash
# Two builds or two settings of the service, and the floor, loaded in turn (wrk, 5 s each) for ROUNDS
# rounds: req/s and the share of the floor's. Interleaved, because this machine's speed drifts over
# minutes by more than most changes: compare the A and B columns round by round.
#   bench/ab.sh [ROUNDS] [DIR_A] [DIR_B]     (default: 5 rounds, this checkout for both)
#   ENV_A / ENV_B: settings for one side, e.g. ENV_A="MNIST_ENGINE_SPIN_MS=0"
#   BODY=digit|canvas|batch (as bench/server-cpu.sh), CONNECTIONS (8), THREADS (2). 127.0.0.1 only.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$here/.venv/bin/python}"
rounds="${1:-5}"
dir_a="${2:-$here}"
dir_b="${3:-$here}"
kind="${BODY:-digit}"
command -v wrk > /dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 2; }
body="$(mktemp)"
pids=()
trap 'rm -f "$body"; for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
route="$(cd "$here" && "$python" -m bench.body "$kind" "$body")" || { echo "BODY must be digit, canvas or batch" >&2; exit 2; }

serve() {  # port dir settings...: a service, its own process (exec: $! is the server)
  local port=$1 dir=$2; shift 2
  (cd "$dir" && exec env "$@" PORT="$port" MNIST_LOG_LEVEL=warning "$python" -m app > /dev/null 2>&1) &
  pids+=($!)
}
(cd "$here" && exec "$python" -m uvicorn --no-access-log --port 18921 bench.floor:app > /dev/null 2>&1) &
pids+=($!)
# shellcheck disable=SC2086  # ENV_A / ENV_B are lists of NAME=value words
serve 18922 "$dir_a" ${ENV_A:-}
# shellcheck disable=SC2086
serve 18923 "$dir_b" ${ENV_B:-}
for port in 18921 18922 18923; do
  probe=/readyz; [ "$port" = 18921 ] && probe=/docs
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port$probe" > /dev/null && break; sleep 0.1; done
done
export BENCH_BODY="$body" BENCH_CONTENT_TYPE="multipart/form-data; boundary=benchboundary7MA4YWxkTrZu0gW"
rate() {
  wrk -t"${THREADS:-2}" -c"${CONNECTIONS:-8}" -d5s -s "$here/bench/post.lua" "http://127.0.0.1:$1$route" | awk '/Requests\/sec/ {print $2}'
}
for port in 18922 18923; do rate "$port" > /dev/null; done  # warm-up
echo "BODY=$kind, ${CONNECTIONS:-8} connections; A: $dir_a ${ENV_A:-}; B: $dir_b ${ENV_B:-}"
for _ in $(seq "$rounds"); do
  floor=0; [ "$kind" != batch ] && floor=$(rate 18921)  # the floor reads one file: no batch route
  a=$(rate 18922); b=$(rate 18923)
  awk -v f="$floor" -v a="$a" -v b="$b" 'BEGIN {
    if (f > 0) printf "floor %6.0f   A %6.0f (%.2fx)   B %6.0f (%.2fx)   B/A %.2f\n", f, a, a / f, b, b / f, b / a
    else printf "A %6.0f   B %6.0f   B/A %.2f\n", a, b, b / a }'
done
