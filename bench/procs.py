"""What every bench script shares about servers: a free port on 127.0.0.1, a server process started
and stopped, and its processes as /proc shows them (Linux only, no psutil): its engine children, and
the resident memory and CPU time of each process.

Nothing here imports `app`: the service is started as `python -m app`, and its engines are found by
their command line (`-m` and one of ENGINE_MODULES)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
MODEL = ROOT / "models" / "mnist-mlp.keras"
SERVICE = ["-m", "app"]  # how the service starts (what `make serve` runs)
# an engine child's `-m` module: its name after app/'s move into packages, and before it
ENGINE_MODULES = ("app.engines.worker", "app.engine")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server process on a free port of 127.0.0.1; `ready_seconds` is the time from spawn to its
    first 200 on `probe`. `argv` may hold `{port}`; `cwd` is the checkout it runs from."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        probe: str = "/readyz",
        env: dict[str, str] | None = None,
        cwd: Path = ROOT,
        timeout: float = 120,
    ) -> None:
        self.name, self.port = name, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {**os.environ, "PORT": str(self.port), "HOST": "127.0.0.1", **(env or {})}
        argv = [a.replace("{port}", str(self.port)) for a in argv]
        started = time.perf_counter()
        self.process = subprocess.Popen(
            argv, cwd=cwd, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = started + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{name} exited with status {self.process.returncode}")
            try:
                if httpx.get(self.url + probe, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.01)
        else:
            self.stop()
            raise RuntimeError(f"{name} did not answer {probe} within {timeout:g} s")
        self.ready_seconds = time.perf_counter() - started

    @classmethod
    def service(cls, name: str = "service", env: dict[str, str] | None = None, cwd: Path = ROOT) -> Server:
        """`python -m app` from `cwd`, ready when /readyz answers; per-request log lines off."""
        return cls(name, [PYTHON, *SERVICE], "/readyz", {"MNIST_LOG_LEVEL": "warning", **(env or {})}, cwd)

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_mib(self) -> float:
        """Resident memory of the server and its direct children (the engines), in MiB."""
        return sum(rss_mib(pid) or 0.0 for pid in [self.pid, *children(self.pid)])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def children(pid: int) -> list[int]:
    """Direct children of `pid`, from every thread's children list (a child belongs to the thread that
    forked it). Empty if `pid` is gone."""
    found: set[int] = set()
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []
    for task in tasks:
        try:
            found.update(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue  # the thread ended meanwhile
    return sorted(found)


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def is_engine(pid: int) -> bool:
    """A `python -m app.engines.worker` (or, before app/ moved, `app.engine`) child."""
    argv = cmdline(pid)
    return any(argv[i] == "-m" and argv[i + 1] in ENGINE_MODULES for i in range(len(argv) - 1))


def engines(server_pid: int) -> list[int]:
    return [pid for pid in children(server_pid) if is_engine(pid)]


def rss_mib(pid: int) -> float | None:
    """Resident set size in MiB (from /proc/<pid>/statm), or None if the process is gone."""
    try:
        resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident * PAGE_KIB / 1024


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of the process itself (not of its children), in seconds; None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": fields from 3 (state) on
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields 14 (utime) and 15 (stime)


class CpuMeter:
    """CPU seconds a server process and its engines spend between `start()` and `stop()`. An engine
    replaced meanwhile is counted for the part of its life inside the window that /proc still shows
    (a process gone before `stop()` loses its share: `partial` says so)."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.before: dict[int, float] = {}
        self.server = self.engines = 0.0
        self.partial = False

    def start(self) -> None:
        self.before = {p: cpu_seconds(p) or 0.0 for p in [self.server_pid, *engines(self.server_pid)]}

    def stop(self) -> None:
        after = {p: cpu_seconds(p) for p in [self.server_pid, *engines(self.server_pid)]}
        self.partial = any(p not in after for p in self.before) or any(p not in self.before for p in after)
        used = {p: (after.get(p) or self.before.get(p, 0.0)) - self.before.get(p, 0.0) for p in after}
        self.server = used.pop(self.server_pid, 0.0)
        self.engines = sum(used.values())
