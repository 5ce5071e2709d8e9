"""CPU seconds spent by processes, read from /proc (Linux): what a request costs the server,
the database and the load generator, which stays meaningful on a machine shared with other
work, where latencies alone only say that the cores were busy."""

import os
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone, or not Linux
        return None
    return text[text.rindex(")") + 2 :].split()  # the name may hold spaces; fields follow it


def process_cpu(pid: int) -> float:
    """User + system seconds of one process (0 if it is gone)."""
    fields = _stat(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / TICKS


def tree_cpu(root: int) -> float:
    """CPU seconds of ``root`` and its live descendants (gunicorn's master and workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += process_cpu(pid)
        todo += children.get(pid, [])
    return total


def pids_cpu(pids: list[int]) -> float:
    return sum(process_cpu(pid) for pid in pids)


def machine_pace(steps: int = 10_000_000) -> float:
    """CPU seconds of an empty Python loop of ``steps``: the same work on every run, so it says
    how fast the machine is at this moment. A shared host's cores move by a factor of two
    within an hour; a run is read beside the pace measured just before it."""
    started = time.process_time()
    for _ in range(steps):
        pass
    return time.process_time() - started
