"""Standard streams the shell closed (`cmd >&-`, `2>&-`), reopened on /dev/null first thing.

Python then starts with `sys.stdout = None` (every print fails), and the first file the
process opens takes the free descriptor, so output meant for the terminal lands in it (a
warning written into an index file, or on stdout in the middle of `--json`). Called before
anything else opens a file.
"""

from __future__ import annotations

import os
import sys


def reopen_closed() -> None:
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        try:
            os.fstat(fd)
        except OSError:
            os.dup2(opened := os.open(os.devnull, os.O_RDWR), fd)
            if opened != fd:
                os.close(opened)
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, mode, closefd=False, encoding="utf-8", errors="backslashreplace"))
