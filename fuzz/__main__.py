"""`make fuzz`: fuzz the decode and preprocessing entry point (fuzz/harness.py) for FUZZ_SECONDS.

    FUZZ_SECONDS=600 python -m fuzz        # the default: 10 minutes
    python -m fuzz --seconds 60 --corpus artifacts/fuzz/corpus

Seeds the corpus (fuzz/seeds.py), runs libFuzzer through atheris with a 2 s limit per input and an RSS
limit, and prints executions per second, the coverage reached (libFuzzer's `cov`: Python branches of
the instrumented modules), the number of new corpus entries and the peak RSS. An input that raises
anything but an image error, takes over 2 s or goes over the RSS limit is kept under artifacts/fuzz/
with the command that reproduces it, and the exit status is 1.
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", 600)))
    parser.add_argument("--corpus", type=Path, default=ARTIFACTS / "corpus")
    parser.add_argument("--timeout", type=int, default=2, help="seconds an input may take (default 2)")
    parser.add_argument("--rss-limit-mb", type=int, default=2048, help="libFuzzer's RSS limit (default 2048)")
    args = parser.parse_args(argv)
    seeded = seeds.write(args.corpus)
    before = len(list(args.corpus.iterdir()))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    started = time.time()
    command = [
        sys.executable, "-m", "fuzz.harness", str(args.corpus),
        f"-max_total_time={args.seconds}", f"-timeout={args.timeout}", f"-rss_limit_mb={args.rss_limit_mb}",
        f"-artifact_prefix={ARTIFACTS}/", "-print_final_stats=1", "-max_len=1048576",
    ]  # fmt: skip
    print(f"fuzz: {args.seconds} s, corpus {args.corpus} ({before} entries, {seeded} new seeds)", flush=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, errors="replace")
    log = run.stderr
    (ARTIFACTS / "last-run.log").write_text(log)
    stats = dict(re.findall(r"^stat::(\w+):\s+(\d+)", log, re.M))
    coverage = re.findall(r"cov: (\d+)", log)
    features = re.findall(r"ft: (\d+)", log)
    after = len(list(args.corpus.iterdir()))
    print(f"  executions        {stats.get('number_of_executed_units', '?')}")
    print(f"  executions/s      {stats.get('average_exec_per_sec', '?')}")
    print(
        f"  coverage          {coverage[-1] if coverage else '?'} (cov), {features[-1] if features else '?'} features (ft)"
    )
    print(f"  new corpus entries {after - before} (corpus {after})")
    print(f"  peak RSS          {stats.get('peak_rss_mb', '?')} MB (limit {args.rss_limit_mb} MB)")
    findings = sorted(p for p in ARTIFACTS.iterdir() if p.name.startswith(FINDINGS) and p.stat().st_mtime >= started)
    for finding in findings:
        print(f"  FOUND {finding.relative_to(ROOT)}; reproduce: python -m fuzz.harness {finding.relative_to(ROOT)}")
    if findings or run.returncode != 0:
        tail = "\n".join(log.splitlines()[-25:])
        print(f"fuzz: FAILED (libFuzzer exit status {run.returncode})\n{tail}")
        return 1
    print("fuzz: ok (only image errors raised, every input within the time and RSS limits)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
