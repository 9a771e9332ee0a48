"""`make fuzz`: fuzz the decode, preprocessing and reading entry points (fuzz/harness.py) and the gRPC
request converter (fuzz/grpc_harness.py) for FUZZ_SECONDS in all.

    FUZZ_SECONDS=600 python -m fuzz        # the default: 10 minutes, 3/4 uploads then 1/4 gRPC messages
    python -m fuzz --seconds 60 --corpus artifacts/fuzz/corpus
    python -m fuzz --harness grpc --seconds 60     # one harness, for all of the time

Seeds each harness's corpus (fuzz/seeds.py; fuzz/grpc_inputs.py: valid requests built with the server's
own stubs), runs libFuzzer through atheris with a time limit per input and an RSS limit, and prints
executions per second, the coverage reached (libFuzzer's `cov`: Python branches of the instrumented
modules), the number of new corpus entries and the peak RSS. Then it replays the whole corpus without
instrumentation (fuzz/replay.py) to check the service's memory and time: no growth from round to round,
a bounded peak, no input over 2 s. An input that raises anything but an image error (uploads) or a
client error, status < 500 (gRPC messages), or trips libFuzzer's limits, is kept under artifacts/fuzz/
(artifacts/fuzz/grpc/ for the gRPC harness) with the command that reproduces it, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from fuzz import seeds

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts" / "fuzz"
FINDINGS = ("crash-", "timeout-", "oom-", "leak-", "slow-unit-")
CHUNK_S = 30
GRPC_SHARE = 0.25  # of FUZZ_SECONDS, when both harnesses run: the converter is small and saturates fast


@dataclass
class Harness:
    """One harness: its module, where its corpus and findings go, its seeds and its libFuzzer options."""

    name: str
    module: str
    artifacts: Path
    max_len: int
    what: str  # what it may raise

    def seed(self, corpus: Path) -> int:
        if self.name == "uploads":
            return seeds.write(corpus)
        from fuzz import grpc_inputs  # the server's protobuf stubs: only in a process that needs them

        (self.artifacts / "grpc.dict").write_text("".join(f'"{word.decode()}"\n' for word in grpc_inputs.dictionary()))
        return seeds.write(corpus, grpc_inputs.seeds())

    def flags(self) -> list[str]:
        return [f"-dict={self.artifacts / 'grpc.dict'}"] if self.name == "grpc" else []


HARNESSES = {
    "uploads": Harness("uploads", "fuzz.harness", ARTIFACTS, 1048576, "an image error"),
    "grpc": Harness("grpc", "fuzz.grpc_harness", ARTIFACTS / "grpc", 65536, "a client error (status < 500)"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", 600)),
                        help=f"in all (default $FUZZ_SECONDS, else 600); with both harnesses, gRPC gets {GRPC_SHARE:.0%}")  # fmt: skip
    parser.add_argument("--harness", choices=["all", *HARNESSES], default="all")
    parser.add_argument("--corpus", type=Path, default=None,
                        help="the corpus directory (default artifacts/fuzz/corpus; artifacts/fuzz/grpc/corpus for gRPC); "
                        "with --harness all, the upload harness's")  # fmt: skip
    parser.add_argument("--timeout", type=int, default=10,
                        help="seconds an input may take under instrumentation (default 10; the 2 s limit of the "
                        "service's own time is the replay's)")  # fmt: skip
    parser.add_argument("--chunk", type=int, default=CHUNK_S, help=f"seconds per libFuzzer process (default {CHUNK_S})")
    parser.add_argument("--rss-limit-mb", type=int, default=2048,
                        help="libFuzzer's RSS limit for the fuzzing process (default 2048; the service's memory is "
                        "checked by the replay, fuzz/replay.py)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.harness == "all":
        grpc_seconds = max(1, round(args.seconds * GRPC_SHARE))
        plan = [("uploads", args.seconds - grpc_seconds, args.corpus), ("grpc", grpc_seconds, None)]
    else:
        plan = [(args.harness, args.seconds, args.corpus)]
    results = [fuzz(HARNESSES[name], seconds, corpus, args) for name, seconds, corpus in plan]
    return 0 if all(results) else 1


def fuzz(harness: Harness, total: int, corpus: Path | None, args: argparse.Namespace) -> bool:
    corpus = corpus or harness.artifacts / "corpus"
    harness.artifacts.mkdir(parents=True, exist_ok=True)
    seeded = harness.seed(corpus)
    before = len(list(corpus.iterdir()))
    started = time.time()
    print(f"fuzz [{harness.name}]: {total} s in runs of {args.chunk} s, corpus {corpus} ({before} entries, {seeded} new seeds)",
          flush=True)  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    executions, fuzz_seconds, peak, coverage, features, status, log = 0, 0.0, 0, "?", "?", 0, ""
    while status == 0 and (left := total - fuzz_seconds) > 0:
        # libFuzzer processes of CHUNK_S each, on the same corpus: the instrumented process's own memory
        # grows with the run (see fuzz/replay.py), a fresh one starts low
        seconds = max(1, min(args.chunk, round(left)))
        command = [
            sys.executable, "-m", harness.module, str(corpus),
            f"-max_total_time={seconds}", f"-timeout={args.timeout}", f"-rss_limit_mb={args.rss_limit_mb}",
            f"-artifact_prefix={harness.artifacts}/", "-print_final_stats=1", f"-max_len={harness.max_len}",
            *harness.flags(),
        ]  # fmt: skip
        run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, errors="replace")
        status, log = run.returncode, run.stderr
        stats = dict(re.findall(r"^stat::(\w+):\s+(\d+)", log, re.M))
        executions += int(stats.get("number_of_executed_units", 0))
        peak = max(peak, int(stats.get("peak_rss_mb", 0)))
        coverage = (re.findall(r"cov: (\d+)", log) or [coverage])[-1]
        features = (re.findall(r"ft: (\d+)", log) or [features])[-1]
        fuzz_seconds += seconds
    (harness.artifacts / "last-run.log").write_text(log)
    after = len(list(corpus.iterdir()))
    print(f"  executions        {executions} in {fuzz_seconds:.0f} s")
    print(f"  executions/s      {executions / max(fuzz_seconds, 1):.0f}")
    print(f"  coverage          {coverage} (cov), {features} features (ft)")
    print(f"  new corpus entries {after - before} (corpus {after})")
    print(f"  peak RSS          {peak} MB of the fuzzing processes (limit {args.rss_limit_mb} MB)")
    findings = sorted(
        p for p in harness.artifacts.iterdir() if p.name.startswith(FINDINGS) and p.stat().st_mtime >= started
    )
    replay_command = [sys.executable, "-m", "fuzz.replay", "--harness", harness.name, str(corpus), *map(str, findings)]
    replay = subprocess.run(replay_command, cwd=ROOT, env=env, check=False)
    for finding in findings:
        print(f"  FOUND {finding.relative_to(ROOT)}; reproduce: python -m {harness.module} {finding.relative_to(ROOT)}")
    if findings or status != 0:
        tail = "\n".join(log.splitlines()[-25:])
        print(f"fuzz [{harness.name}]: FAILED (libFuzzer exit status {status})\n{tail}")
        return False
    if replay.returncode != 0:
        print(f"fuzz [{harness.name}]: FAILED (the replay's memory grew or peaked over its limit)")
        return False
    print(f"fuzz [{harness.name}]: ok (only {harness.what} raised, every input within 2 s; "
          "the replay's memory flat and bounded)")  # fmt: skip
    return True


if __name__ == "__main__":
    raise SystemExit(main())
