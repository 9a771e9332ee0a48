"""`make fuzz`: fuzz the decode, preprocessing and reading entry points (fuzz/harness.py) for FUZZ_SECONDS.

    FUZZ_SECONDS=600 python -m fuzz        # the default: 10 minutes
    python -m fuzz --seconds 60 --corpus artifacts/fuzz/corpus

Seeds the corpus (fuzz/seeds.py), runs libFuzzer through atheris with a time limit per input and an
RSS limit, and prints executions per second, the coverage reached (libFuzzer's `cov`: Python branches of
the instrumented modules), the number of new corpus entries and the peak RSS. Then it replays the
whole corpus without instrumentation (fuzz/replay.py) to check the service's memory and time: no
growth from round to round, a bounded peak, no input over 2 s. An input that raises anything but an
image error, or trips libFuzzer's limits, is kept under artifacts/fuzz/ with the command that
reproduces it, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from fuzz import seeds

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts" / "fuzz"
FINDINGS = ("crash-", "timeout-", "oom-", "leak-", "slow-unit-")
CHUNK_S = 30


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", 600)))
    parser.add_argument("--corpus", type=Path, default=ARTIFACTS / "corpus")
    parser.add_argument("--timeout", type=int, default=10,
                        help="seconds an input may take under instrumentation (default 10; the 2 s limit of the "
                        "service's own time is the replay's)")  # fmt: skip
    parser.add_argument("--chunk", type=int, default=CHUNK_S, help=f"seconds per libFuzzer process (default {CHUNK_S})")
    parser.add_argument("--rss-limit-mb", type=int, default=2048,
                        help="libFuzzer's RSS limit for the fuzzing process (default 2048; the service's memory is "
                        "checked by the replay, fuzz/replay.py)")  # fmt: skip
    args = parser.parse_args(argv)
    seeded = seeds.write(args.corpus)
    before = len(list(args.corpus.iterdir()))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    started = time.time()
    print(f"fuzz: {args.seconds} s in runs of {args.chunk} s, corpus {args.corpus} ({before} entries, {seeded} new seeds)",
          flush=True)  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    executions, fuzz_seconds, peak, coverage, features, status, log = 0, 0.0, 0, "?", "?", 0, ""
    while status == 0 and (left := args.seconds - fuzz_seconds) > 0:
        # libFuzzer processes of CHUNK_S each, on the same corpus: the instrumented process's own memory
        # grows with the run (see fuzz/replay.py), a fresh one starts low
        seconds = max(1, min(args.chunk, round(left)))
        command = [
            sys.executable, "-m", "fuzz.harness", str(args.corpus),
            f"-max_total_time={seconds}", f"-timeout={args.timeout}", f"-rss_limit_mb={args.rss_limit_mb}",
            f"-artifact_prefix={ARTIFACTS}/", "-print_final_stats=1", "-max_len=1048576",
        ]  # fmt: skip
        run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, errors="replace")
        status, log = run.returncode, run.stderr
        stats = dict(re.findall(r"^stat::(\w+):\s+(\d+)", log, re.M))
        executions += int(stats.get("number_of_executed_units", 0))
        peak = max(peak, int(stats.get("peak_rss_mb", 0)))
        coverage = (re.findall(r"cov: (\d+)", log) or [coverage])[-1]
        features = (re.findall(r"ft: (\d+)", log) or [features])[-1]
        fuzz_seconds += seconds
    (ARTIFACTS / "last-run.log").write_text(log)
    after = len(list(args.corpus.iterdir()))
    print(f"  executions        {executions} in {fuzz_seconds:.0f} s")
    print(f"  executions/s      {executions / max(fuzz_seconds, 1):.0f}")
    print(f"  coverage          {coverage} (cov), {features} features (ft)")
    print(f"  new corpus entries {after - before} (corpus {after})")
    print(f"  peak RSS          {peak} MB of the fuzzing processes (limit {args.rss_limit_mb} MB)")
    findings = sorted(p for p in ARTIFACTS.iterdir() if p.name.startswith(FINDINGS) and p.stat().st_mtime >= started)
    replay_command = [sys.executable, "-m", "fuzz.replay", str(args.corpus), *map(str, findings)]
    replay = subprocess.run(replay_command, cwd=ROOT, env=env, check=False)
    for finding in findings:
        print(f"  FOUND {finding.relative_to(ROOT)}; reproduce: python -m fuzz.harness {finding.relative_to(ROOT)}")
    if findings or status != 0:
        tail = "\n".join(log.splitlines()[-25:])
        print(f"fuzz: FAILED (libFuzzer exit status {status})\n{tail}")
        return 1
    if replay.returncode != 0:
        print("fuzz: FAILED (the replay's memory grew or peaked over its limit)")
        return 1
    print("fuzz: ok (only image errors raised, every input within 2 s; the replay's memory flat and bounded)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
