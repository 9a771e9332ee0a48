"""bench/grpc.py (`make bench-grpc`) with tiny durations: it starts a server, loads both transports on
both workloads, answers the same on each, and reports every figure. Nothing here depends on the speeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.grpc import TRANSPORTS, WORKLOADS, main


def test_a_tiny_run_reports_both_transports_on_both_workloads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    figures = tmp_path / "bench.json"
    status = main(["--seconds", "0.3", "--rounds", "2", "--warmup", "0.1", "--streams", "2", "--no-goal",
                   "--json", str(figures)])  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0, out
    assert out.count("the transports' answers equal: True") == len(WORKLOADS)
    report = json.loads(figures.read_text())
    loads = report["loads"]
    assert {(load["workload"], load["transport"]) for load in loads} == {(w, t) for w in WORKLOADS for t in TRANSPORTS}
    assert len(loads) == 2 * len(WORKLOADS) * len(TRANSPORTS)
    for load in loads:
        assert load["requests"] > 0 and not load["errors"], load
        assert load["p99_ms"] >= load["p50_ms"] > 0
        assert load["engines_cpu_ms_per_request"] > 0  # the engines decode the PNGs: /proc saw them work
    assert set(report["ratios"]) == set(WORKLOADS)
    assert "gRPC throughput >= REST /v2's" in out and "bench-grpc: ok" in out


def test_unknown_workloads_are_refused() -> None:
    with pytest.raises(SystemExit):
        main(["--workloads", "digit,nope"])
