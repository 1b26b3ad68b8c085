"""Timing a command from process start: time to its first stdout byte and to its exit.

The clock starts just before `Popen` (so interpreter start-up and every import count, as a user
at a terminal would feel them). stdout is a pipe read with `os.read`, which returns as soon as
any byte is available, so the first read's timestamp is the first byte's arrival; the child runs
with PYTHONUNBUFFERED=1 (and `rag ask` flushes every token). stderr goes to a temp file, so a
chatty progress bar can never fill a pipe and stall the child.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

from .common import ROOT, BenchError


@dataclass
class ProcRun:
    wall_s: float
    first_byte_s: float | None  # None: the command wrote nothing to stdout
    stdout: str
    stderr: str
    arrivals: list[tuple[float, int]] = field(default_factory=list)  # (seconds, stdout bytes so far) per read

    def time_of(self, marker: str) -> float | None:
        """When `marker` first reached stdout, or None if it never did."""
        at = self.stdout.encode().find(marker.encode())
        if at < 0:
            return None
        return next(t for t, size in self.arrivals if size > at)


def run_timed(args: list[str], env: dict, timeout: float = 300.0) -> ProcRun:
    """Run `python <args>` in the repo; raise BenchError (with its stderr) unless it exits 0."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=err, env=env, cwd=ROOT)
        watchdog = threading.Timer(timeout, proc.kill)
        watchdog.start()
        try:
            arrivals, out = _read_stdout(proc.stdout.fileno(), t0)
            code = proc.wait()
        finally:
            watchdog.cancel()
        wall = time.perf_counter() - t0
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if code != 0:
        raise BenchError(f"`python {' '.join(args)}` exited {code}:\n{stderr[-2000:]}")
    return ProcRun(wall, arrivals[0][0] if arrivals else None, out.decode(errors="replace"), stderr, arrivals)


def _read_stdout(fd: int, t0: float) -> tuple[list[tuple[float, int]], bytes]:
    arrivals, chunks, size = [], [], 0
    while True:
        data = os.read(fd, 65536)
        if not data:
            return arrivals, b"".join(chunks)
        size += len(data)
        arrivals.append((time.perf_counter() - t0, size))
        chunks.append(data)
