#!/usr/bin/env bash
# The server process's CPU time per request under wrk (8 connections, 3 runs of 5 s), from
# /proc/<pid>/stat: a steadier figure than req/s on a shared machine, for A/B runs of one change.
#   bench/server-cpu.sh [REPO_DIR]      (default: this checkout; ROUTE=/v1/predict, PORT=18913)
# Posts a 28x28 digit PNG as a multipart upload (bench.run's body). 127.0.0.1 only.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
repo="${1:-$here}"
python="${PYTHON:-$here/.venv/bin/python}"
port="${PORT:-18913}"
body="$(mktemp)"
trap 'rm -f "$body"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true' EXIT
(cd "$here" && "$python" -c "from bench.run import multipart, digit_png; import sys; sys.stdout.buffer.write(multipart('file', [digit_png(0)]))") > "$body"
(cd "$repo" && PORT="$port" MNIST_LOG_LEVEL=warning exec "$python" -m app > /dev/null 2>&1) &
pid=$!
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/readyz" > /dev/null && break; sleep 0.1; done
server=$pid  # the subshell execs python: the same process
export BENCH_BODY="$body" BENCH_CONTENT_TYPE="multipart/form-data; boundary=benchboundary7MA4YWxkTrZu0gW"
run() { wrk -t2 -c8 -d"$1" -s "$here/bench/post.lua" "http://127.0.0.1:$port${ROUTE:-/v1/predict}"; }
run 2s > /dev/null
for _ in 1 2 3; do
  before=$(awk '{print $14 + $15}' "/proc/$server/stat")
  out=$(run 5s)
  after=$(awk '{print $14 + $15}' "/proc/$server/stat")
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  rate=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  echo "$rate req/s   server CPU $(( (after - before) * 1000000 / $(getconf CLK_TCK) / requests )) us/request"
done
