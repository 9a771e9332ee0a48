#!/usr/bin/env bash
# The CPU time per request of the server process and of its engines under wrk (8 connections, 3 runs of
# 5 s), from /proc/<pid>/stat: steadier figures than req/s on a shared machine, for A/B runs of one change.
#   bench/server-cpu.sh [REPO_DIR]      (default: this checkout; ROUTE=/v1/predict, PORT=18913)
# Posts bench.run's multipart upload: a 28x28 digit PNG, with BODY=canvas its 280x280 canvas drawing
# (every preprocessing step), or with BODY=batch make bench's 64 digit PNGs to /v1/predict/batch. 127.0.0.1 only.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
repo="${1:-$here}"
python="${PYTHON:-$here/.venv/bin/python}"
port="${PORT:-18913}"
kind="${BODY:-digit}"
body="$(mktemp)"
trap 'rm -f "$body"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true' EXIT
route="$(cd "$here" && "$python" -m bench.body "$kind" "$body")" || { echo "BODY must be digit, canvas or batch" >&2; exit 2; }
route="${ROUTE:-$route}"
(cd "$repo" && PORT="$port" MNIST_LOG_LEVEL=warning exec "$python" -m app > /dev/null 2>&1) &
pid=$!
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/readyz" > /dev/null && break; sleep 0.1; done
server=$pid  # the subshell execs python: the same process
engines=$(pgrep -P "$server" -f "app.engine" | tr '\n' ' ' || true)
export BENCH_BODY="$body" BENCH_CONTENT_TYPE="multipart/form-data; boundary=benchboundary7MA4YWxkTrZu0gW"
run() { wrk -t2 -c8 -d"$1" -s "$here/bench/post.lua" "http://127.0.0.1:$port$route"; }
ticks() { local sum=0; for p in "$@"; do sum=$((sum + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$sum"; }
per_request() { echo $(( $1 * 1000000 / $(getconf CLK_TCK) / $2 )); }
run 2s > /dev/null
for _ in 1 2 3; do
  s0=$(ticks "$server"); e0=$(ticks $engines)
  out=$(run 5s)
  s1=$(ticks "$server"); e1=$(ticks $engines)
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  rate=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  echo "$rate req/s   server CPU $(per_request $((s1 - s0)) "$requests") us/request   engines $(per_request $((e1 - e0)) "$requests") us/request"
done
