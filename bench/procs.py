"""The server's processes as /proc shows them (Linux only, no psutil): its engine children, and the
resident memory and CPU time of each process."""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


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
    """A `python -m app.engine` child."""
    argv = cmdline(pid)
    return any(argv[i] == "-m" and argv[i + 1] == "app.engine" for i in range(len(argv) - 1))


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
