#!/usr/bin/env bash
# Instructions counted by valgrind's callgrind: the same count on every run of the same code and inputs,
# whatever else this shared machine is doing (times here vary by 20-40%). Two modes:
#
#   bench/instructions.sh [preprocess] [KIND...]      instructions per file of `preprocess`
#       (default KINDs: scan_jpeg phone_photo canvas_black bmp; FILES=20 files a kind)
#   bench/instructions.sh server [digit canvas batch]  instructions per request of `python -m app`,
#       for the server process and for its engine processes (`python -m app.engines.worker`) apart
#
# A/B a change: REPO=/path/to/checkout (git worktree add /tmp/before HEAD~1) runs that checkout's code
# with this checkout's venv (PYTHON= to use another interpreter), so the other checkout needs no venv.
# Needs valgrind (apt-get install valgrind).
#
# preprocess: each figure is (instructions of a process that preprocesses the FILES files twice - one
# that does it once) / FILES: imports, start-up and what the first use of each code path costs cancel out.
#
# server: the server runs under callgrind with its children (the engines) traced. For each request kind:
# WARMUP requests (default N/5, at least 2: the first of a kind pay for first uses), then ROUNDS (default 2,
# to show the counts reproduce) of: every process's counters zeroed (callgrind_control -z), N requests
# sent one after another on one keep-alive connection by a client outside valgrind, the counters dumped
# (callgrind_control -d); a figure is a dump's instructions / N (the engines' summed: which engine takes
# a batch is the batcher's business). Requests:
#   digit   POST /v1/predict, field `file`: a 28x28 grayscale PNG of an MNIST digit  (DIGIT_N, default 50)
#   canvas  POST /v1/predict, field `file`: a 280x280 RGBA PNG, a dark digit on white as a browser canvas
#           gives it                                                                  (CANVAS_N, default 20)
#   batch   POST /v1/predict/batch, field `files` 64 times: 64 different 28x28 digits (BATCH_N, default 5)
# What makes the counts depend on timing is switched off: the engines sleep at once between batches
# rather than poll (MNIST_ENGINE_SPIN_MS=0), no model-file polling, a fixed hash seed, no address
# randomisation. What is left: uvicorn's event loop wakes every 0.1 s however idle (its main_loop tick), so
# the server's count holds those wakes over the round's wall time, which valgrind and the machine's load
# set. IDLE_S (default 20) seconds of the idle server are counted first; that rate times the round's wall
# time is the "idle" column, and "server" is the count less it. The engines block in read() between
# batches: nothing to subtract there.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "${REPO:-$here}" && pwd)"
python="${PYTHON:-$here/.venv/bin/python}"
mode=preprocess
case "${1:-}" in
  server) mode=server; shift ;;
  preprocess) shift ;;
esac
command -v valgrind > /dev/null || { echo "valgrind not found (apt-get install valgrind)" >&2; exit 2; }
work="$(mktemp -d)"
host=127.0.0.1  # the server's listening address: only local traffic
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2> /dev/null; then
    kill -TERM "$server_pid" 2> /dev/null || true
    wait "$server_pid" 2> /dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

preprocess_mode() {
  local files="${FILES:-20}" kinds=("$@") kind once twice
  [ ${#kinds[@]} -gt 0 ] || kinds=(scan_jpeg phone_photo canvas_black bmp)
  echo "instructions per file of preprocess, $files files a kind ($repo)"
  for kind in "${kinds[@]}"; do
    (cd "$repo" && PYTHONPATH="$repo" "$python" -c "
import pickle
from bench.preprocess import uploads
pickle.dump(uploads('$kind', $files, 3), open('$work/$kind.pkl', 'wb'))
")
    once=$(count_preprocess "$kind" 1)
    twice=$(count_preprocess "$kind" 2)
    echo "$kind $(( (twice - once) / files ))" | awk '{printf "  %-20s %8.3f M\n", $1, $2 / 1e6}'
  done
}

count_preprocess() {  # KIND PASSES: instructions of a process that preprocesses the files of KIND PASSES times
  (cd "$repo" && OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONHASHSEED=0 PYTHONPATH="$repo" setarch "$(uname -m)" -R valgrind --tool=callgrind --callgrind-out-file=/dev/null "$python" -c "
import pickle
from app.preprocessing import preprocess
files = pickle.load(open('$work/$1.pkl', 'rb'))
for _ in range($2):
    for data in files:
        preprocess(data)
" 2>&1 | awk '/Collected/ {print $4}')
}

# The request bodies, built here from the committed MNIST sample (not from bench/'s helpers, so that this
# measures any checkout the same way): KIND.body and KIND.type (its Content-Type) in $work. The parts have
# the layout curl -F, browsers and httpx send.
make_bodies() {
  (cd "$repo" && "$python" - "$work" << 'EOF'
import io
import sys

import numpy as np
from PIL import Image

work = sys.argv[1]
digits = np.load("app/data/mnist-sample.npz")["x"]
BOUNDARY = "instructions0boundary0sh"


def png(image):
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def write(kind, field, files):
    body = b"".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="{kind}{i}.png"\r\n'
        "Content-Type: image/png\r\n\r\n".encode() + data + b"\r\n"
        for i, data in enumerate(files)
    ) + f"--{BOUNDARY}--\r\n".encode()
    open(f"{work}/{kind}.body", "wb").write(body)
    open(f"{work}/{kind}.type", "w").write(f"multipart/form-data; boundary={BOUNDARY}")


write("digit", "file", [png(Image.fromarray(digits[0], "L"))])
big = Image.fromarray(255 - digits[1], "L").resize((280, 280), Image.BILINEAR)  # black on white, 10x
write("canvas", "file", [png(big.convert("RGBA"))])
write("batch", "files", [png(Image.fromarray(digits[i], "L")) for i in range(2, 66)])
EOF
  )
}

# The client, outside valgrind: COUNT requests of KIND, one after another on one keep-alive connection (as
# a browser or a load generator sends them). Any answer but 200 stops the run.
write_client() {
  cat > "$work/client.py" << 'EOF'
import http.client
import sys

host, port, kind, count, work = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
body = open(f"{work}/{kind}.body", "rb").read()
headers = {"Content-Type": open(f"{work}/{kind}.type").read()}
path = "/v1/predict/batch" if kind == "batch" else "/v1/predict"
connection = http.client.HTTPConnection(host, port, timeout=600)
for _ in range(count):
    connection.request("POST", path, body, headers)
    response = connection.getresponse()
    answer = response.read()
    if response.status != 200:
        sys.exit(f"{kind}: HTTP {response.status}: {answer[:300]!r}")
EOF
}

elapsed() {  # STARTED (an $EPOCHREALTIME): the seconds since
  awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.3f", b - a}'
}

free_port() {
  "$python" -c "import socket; s = socket.socket(); s.bind(('$host', 0)); print(s.getsockname()[1])"
}

engine_pids() {  # the server's children that run app.engines.worker (each valgrind'd: --trace-children)
  local pid
  for pid in $(pgrep -P "$server_pid" || true); do
    if tr '\0' ' ' < "/proc/$pid/cmdline" 2> /dev/null | grep -q 'app\.engine'; then echo "$pid"; fi
  done
}

# callgrind_control finds a process by files valgrind names after $USER and $HOST as the process had them
# (vgdb-pipe-...-PID-by-USER-on-HOST): the server's HOST is its listening address, so pass the same.
control() {  # OPTION PID
  HOST="$host" callgrind_control "$1" "$2" > /dev/null 2>&1 || { echo "callgrind_control $1 $2 failed" >&2; return 1; }
}

zero() {
  local pid
  for pid in "$@"; do control -z "$pid"; done
}

dumped() {  # PID...: dump each one's counters; print the sum of the instructions since they were zeroed
  local pid part sum=0 count
  for pid in "$@"; do
    control -d "$pid"
    part=$(find "$work" -name "cg.$pid.*" | sed 's/.*\.//' | sort -n | tail -1)
    [ -n "$part" ] || { echo "no callgrind dump of $pid" >&2; return 1; }
    # "summary:" is what was executed since the zeroing; a dump's "totals:" also holds costs of the
    # calls still open on the stack when it was zeroed (a process idle since then has summary 0 and not)
    count=$(awk '/^summary:/ {print $2}' "$work/cg.$pid.$part")
    sum=$(( sum + count ))
  done
  echo "$sum"
}

server_mode() {
  local kinds=("$@") port kind n round started seconds server engines engines_total idle_rate idle now ready=""
  [ ${#kinds[@]} -gt 0 ] || kinds=(digit canvas batch)
  local rounds="${ROUNDS:-2}" warmup idle_s="${IDLE_S:-20}"
  command -v callgrind_control > /dev/null || { echo "callgrind_control not found" >&2; exit 2; }
  make_bodies
  write_client
  port=$(free_port)
  (
    cd "$repo"
    exec env PORT="$port" HOST="$host" MNIST_LOG_LEVEL=warning MNIST_ENGINE_SPIN_MS=0 \
      MNIST_ENGINE_TIMEOUT_S=600 MNIST_MODEL_POLL_S=0 PYTHONHASHSEED=0 PYTHONPATH="$repo" \
      OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
      setarch "$(uname -m)" -R valgrind --tool=callgrind --trace-children=yes \
      --callgrind-out-file="$work/cg.%p" --log-file="$work/valgrind.%p.log" "$python" -m app
  ) > "$work/server.log" 2>&1 &
  server_pid=$!
  # start-up under valgrind takes minutes (imports, the model's check, two engines starting)
  for _ in $(seq 600); do
    kill -0 "$server_pid" 2> /dev/null || { cat "$work/server.log" >&2; echo "the server exited" >&2; exit 1; }
    if curl -sf -o /dev/null "http://$host:$port/readyz"; then ready=1; break; fi
    sleep 1
  done
  [ -n "$ready" ] || { cat "$work/server.log" >&2; echo "the server was not ready in 10 minutes" >&2; exit 1; }
  mapfile -t engines < <(engine_pids)
  [ ${#engines[@]} -gt 0 ] || { echo "no engine processes found under $server_pid" >&2; exit 1; }
  # the idle server's rate: instructions per second of uvicorn's ticks (the wall time is taken from the
  # zeroing to the dump, the window the counters see)
  zero "$server_pid"
  started=$EPOCHREALTIME
  sleep "$idle_s"
  seconds=$(elapsed "$started")
  server=$(dumped "$server_pid")
  idle_rate=$(awk -v i="$server" -v s="$seconds" 'BEGIN {printf "%d", i / s}')
  echo "instructions per request, M ($repo; server pid $server_pid, engines ${engines[*]};" \
    "idle server $(awk -v r="$idle_rate" 'BEGIN {printf "%.3f", r / 1e6}') M/s)"
  echo "  server: its instructions less what it spends idle over the same wall time (server-raw - idle)"
  printf '  %-8s %4s %5s %9s %9s %11s %9s %8s\n' request n round server engines server-raw idle seconds
  for kind in "${kinds[@]}"; do
    case "$kind" in
      digit) n="${DIGIT_N:-50}" ;;
      canvas) n="${CANVAS_N:-20}" ;;
      batch) n="${BATCH_N:-5}" ;;
      *) echo "unknown request kind: $kind (digit, canvas, batch)" >&2; exit 2 ;;
    esac
    # the first requests of a kind pay for first uses (imports, caches, the heap's growth) in the server
    # and the engine: a fifth of N (at least 2) go first, uncounted
    warmup="${WARMUP:-$(( n / 5 > 2 ? n / 5 : 2 ))}"
    "$python" "$work/client.py" "$host" "$port" "$kind" "$warmup" "$work"
    for round in $(seq "$rounds"); do
      zero "${engines[@]}"
      zero "$server_pid"
      started=$EPOCHREALTIME
      "$python" "$work/client.py" "$host" "$port" "$kind" "$n" "$work"
      seconds=$(elapsed "$started")
      server=$(dumped "$server_pid")
      engines_total=$(dumped "${engines[@]}")
      idle=$(awk -v r="$idle_rate" -v s="$seconds" 'BEGIN {printf "%d", r * s}')
      awk -v k="$kind" -v n="$n" -v r="$round" -v s="$server" -v i="$idle" -v e="$engines_total" -v t="$seconds" \
        'BEGIN {printf "  %-8s %4d %5d %9.3f %9.3f %11.3f %9.3f %8.1f\n", k, n, r, (s - i) / n / 1e6, e / n / 1e6, s / n / 1e6, i / n / 1e6, t}'
    done
  done
  mapfile -t now < <(engine_pids)
  [ "${now[*]}" = "${engines[*]}" ] || echo "warning: the engine processes changed (${engines[*]} -> ${now[*]})" >&2
  kill -TERM "$server_pid"
  wait "$server_pid" || true
  server_pid=""
}

if [ "$mode" = server ]; then server_mode "$@"; else preprocess_mode "$@"; fi
