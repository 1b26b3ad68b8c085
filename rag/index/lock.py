"""One index run at a time per data folder: an exclusive, non-blocking file lock.

`filelock` (an OS lock: flock on Linux) is released by the kernel when the holder dies, even
by `kill -9`, so a crashed run never leaves a stale lock behind. In server mode the lock file
is still in the local data folder: it serialises runs that share that folder (the usual case,
one machine); runs from several machines against one Chroma server must be kept apart by hand.
"""

from __future__ import annotations

from contextlib import contextmanager

from rag.errors import StoreError
from rag.settings import Settings


class IndexBusyError(StoreError):
    """Another index run holds the lock."""


@contextmanager
def index_lock(settings: Settings):
    from filelock import FileLock, Timeout

    path = settings.data_dir / "index.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path), timeout=0)
        lock.acquire()
    except Timeout:
        raise IndexBusyError(f"another `python -m rag index` is running on {settings.data_dir} (it holds {path}); "
                             "wait for it to finish, then run this again") from None
    except OSError as e:  # a data dir below a file, read-only, full: the store's own words for it
        from rag.index.store_health import explain_os

        raise explain_os(e, settings, path.parent) from None
    try:
        yield
    finally:
        lock.release()
