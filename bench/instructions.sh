#!/usr/bin/env bash
# Instructions per file of `preprocess`, counted by valgrind's callgrind: the same count on every run of
# the same code and files, whatever else this shared machine is doing (times here vary by 20-40%).
#   bench/instructions.sh [KIND...]   (default: scan_jpeg phone_photo canvas_black bmp; FILES=20)
# A/B a change: run it in two checkouts (git worktree add /tmp/before HEAD~1) with this one's venv.
# Each figure is (instructions of a process that preprocesses the FILES files twice - one that does it
# once) / FILES: imports, start-up and what the first use of each code path costs cancel out.
# Needs valgrind (apt-get install valgrind).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$repo/.venv/bin/python}"
files="${FILES:-20}"
kinds=("$@")
[ ${#kinds[@]} -gt 0 ] || kinds=(scan_jpeg phone_photo canvas_black bmp)
command -v valgrind > /dev/null || { echo "valgrind not found (apt-get install valgrind)" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
count() {  # count KIND PASSES: instructions of a process that preprocesses the files of KIND PASSES times
  (cd "$repo" && OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONHASHSEED=0 PYTHONPATH="$repo" setarch "$(uname -m)" -R valgrind --tool=callgrind --callgrind-out-file=/dev/null "$python" -c "
import pickle
from app.preprocessing import preprocess
files = pickle.load(open('$work/$1.pkl', 'rb'))
for _ in range($2):
    for data in files:
        preprocess(data)
" 2>&1 | awk '/Collected/ {print $4}')
}
echo "instructions per file of preprocess, $files files a kind ($repo)"
for kind in "${kinds[@]}"; do
  (cd "$repo" && PYTHONPATH="$repo" "$python" -c "
import pickle
from bench.preprocess import uploads
pickle.dump(uploads('$kind', $files, 3), open('$work/$kind.pkl', 'wb'))
")
  once=$(count "$kind" 1)
  twice=$(count "$kind" 2)
  echo "$kind $(( (twice - once) / files ))" | awk '{printf "  %-20s %8.3f M\n", $1, $2 / 1e6}'
done
