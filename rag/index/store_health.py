"""Opening the Chroma store: every failure as one line that names the path and the fix, a
server that never answers timed out, and a corrupted embedded store moved aside (never
deleted) so `python -m rag index --rebuild` can start fresh.

chromadb reports a broken store in many shapes: `InternalError("… (code: 11) database disk
image is malformed")`, a Rust panic (`pyo3_runtime.PanicException`, which is a BaseException,
not an Exception), an OSError from creating the folder, httpx errors from a server. They are
classified here, once, by SQLite result code, errno or message, so every caller gets a
`StoreError` (or `StoreCorrupted`) instead of a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import sqlite3
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path

from rag.errors import StoreCorrupted, StoreError
from rag.settings import Settings

REBUILD = "python -m rag index --rebuild"
# SQLite result codes chromadb quotes as "(code: N)"
_CORRUPT, _NOTADB, _READONLY, _FULL, _BUSY, _CANTOPEN = 11, 26, 8, 13, 5, 14
# "Error executing plan: … Error getting embedding / finding id": a vector read failed on a damaged
# HNSW file (a truncated data_level0.bin), which only a rebuild repairs
_CORRUPT_TEXT = re.compile(r"malformed|not a database|corrupt|Expect it to be fetched|panicked"
                           r"|Error (finding id|getting embedding)", re.I)
# chromadb reports a full disk as a failed compaction ("Failed to apply logs to the hnsw segment
# writer"), never as ENOSPC: below this much free space, that is the likelier cause
LOW_SPACE = 64 * 2**20


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]


def _sqlite_code(e: BaseException) -> int | None:
    m = re.search(r"\(code: (\d+)\)", str(e)) or re.search(r"SqliteError \{ code: (\d+)", str(e))
    return int(m.group(1)) if m else None


def fatal(e: BaseException) -> bool:
    """Exceptions that must pass through untouched (Ctrl-C, exit)."""
    return isinstance(e, (KeyboardInterrupt, SystemExit, GeneratorExit))


def explain_os(e: OSError, settings: Settings, path: Path) -> StoreError:
    where = settings.data_dir
    if isinstance(e, (NotADirectoryError, FileExistsError)) or e.errno in (errno.ENOTDIR, errno.EEXIST):
        return StoreError(f"RAG_DATA_DIR={str(where)!r} is not a folder ({path} or a folder above it is a file); "
                          "point RAG_DATA_DIR at a folder, or move that file away")
    if isinstance(e, PermissionError) or e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return _read_only(settings, path, e.strerror or _reason(e))
    if e.errno == errno.ENOSPC:
        return StoreError(f"no space left on the disk holding {path}; free some space and run the command again")
    return StoreError(f"cannot use the data folder {path} ({_reason(e)}); set RAG_DATA_DIR to a writable folder")


def _read_only(settings: Settings, path: Path, why: str) -> StoreError:
    return StoreError(f"the store at {path} is read-only ({why}); Chroma must write even to read: make it "
                      f"writable (`chmod -R u+w {settings.data_dir}`) or copy it to a writable folder and "
                      "point RAG_DATA_DIR there")


def explain(e: BaseException, settings: Settings) -> StoreError:
    """A one-line StoreError for any failure of the embedded store or a Chroma server."""
    if isinstance(e, StoreError):
        return e
    if settings.chroma_host:
        return _explain_server(e, settings)
    path = settings.data_dir / "chroma"
    if isinstance(e, OSError) and not isinstance(e, (TimeoutError, ConnectionError)):
        return explain_os(e, settings, path)
    code = _sqlite_code(e)
    if code == _FULL or (free := _free_bytes(path)) < LOW_SPACE:
        space = "" if code == _FULL else f" ({free // 2**20} MB free)"
        return StoreError(f"the disk holding {path} is full{space}: the store failed ({_reason(e)}); free some space "
                          "and run the command again")
    if code in (_CORRUPT, _NOTADB) or _CORRUPT_TEXT.search(str(e)) or type(e).__name__ == "PanicException":
        return StoreCorrupted(f"the store at {path} is corrupted ({_reason(e)}); run `{REBUILD}`: it moves the "
                              "broken store aside (kept, not deleted) and builds a fresh index from the seed files")
    if code == _READONLY or "readonly" in str(e) or "Permission denied" in str(e):
        return _read_only(settings, path, _reason(e))
    if code == _BUSY:
        return StoreError(f"the store at {path} is locked by another process ({_reason(e)}); wait for it to "
                          "finish, or stop it")
    return StoreError(f"the store at {path} failed ({type(e).__name__}: {_reason(e)}); if it is damaged, "
                      f"`{REBUILD}` moves it aside and builds a fresh one")


def _free_bytes(path: Path) -> int:
    """Free space on the disk holding `path` (its nearest existing folder); unknown counts as plenty."""
    for folder in (path, *path.parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                break
    return 2**62


def _explain_server(e: BaseException, settings: Settings) -> StoreError:
    where = f"{settings.chroma_host}:{settings.chroma_port}"
    start = (f"start it with `chroma run --path DIR --host {settings.chroma_host} --port {settings.chroma_port}`, "
             "or unset RAG_CHROMA_HOST")
    if isinstance(e, TimeoutError) or "timed out" in str(e).lower() or "Timeout" in type(e).__name__:
        return StoreError(f"the Chroma server at {where} did not answer within {settings.chroma_timeout:g} s; "
                          f"check that it is a healthy Chroma server, raise RAG_CHROMA_TIMEOUT, or {start}")
    return StoreError(f"the Chroma server at {where} failed ({type(e).__name__}: {_reason(e)}); {start}")


def from_chroma(e: BaseException) -> bool:
    """Was this raised inside chromadb (also as an httpx error from its HTTP client)?"""
    if type(e).__module__.startswith("chromadb") or type(e).__name__ == "PanicException":
        return True
    return any("/chromadb/" in frame.filename for frame in traceback.extract_tb(e.__traceback__))


def preflight(settings: Settings) -> None:
    """GET the server's heartbeat with a timeout before chromadb's client, which waits forever,
    talks to it: a server that accepts connections but never answers is an error, not a hang."""
    url = f"http://{settings.chroma_host}:{settings.chroma_port}/api/v2/heartbeat"
    try:
        with urllib.request.urlopen(url, timeout=settings.chroma_timeout) as response:
            body = json.loads(response.read(65536) or b"null")
    except urllib.error.HTTPError as e:
        raise StoreError(f"{settings.chroma_host}:{settings.chroma_port} is not a Chroma 1.x server (HTTP {e.code} "
                         "on /api/v2/heartbeat); run `chroma run`, or fix RAG_CHROMA_HOST/RAG_CHROMA_PORT") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            raise _explain_server(TimeoutError(), settings) from None
        raise StoreError(f"Chroma server at {settings.chroma_host}:{settings.chroma_port} is not reachable "
                         f"({reason}); start it with `chroma run --path DIR --host {settings.chroma_host} "
                         f"--port {settings.chroma_port}`, or unset RAG_CHROMA_HOST") from None
    if not isinstance(body, dict):
        raise StoreError(f"{settings.chroma_host}:{settings.chroma_port} answered the heartbeat with something "
                         "other than Chroma's JSON; fix RAG_CHROMA_HOST/RAG_CHROMA_PORT")


def within_timeout(make, settings: Settings):
    """`make()` (chromadb.HttpClient: it makes requests while it is built, before any timeout can
    be set) within RAG_CHROMA_TIMEOUT: a server that answered the heartbeat but hangs now is a
    StoreError instead of a hang (`rag.deadline`)."""
    from rag.deadline import within

    try:
        return within(make, settings.chroma_timeout, "chroma-connect")
    except TimeoutError:
        raise _explain_server(TimeoutError(), settings) from None


def bound_requests(cl, settings: Settings) -> None:
    """chromadb's HTTP client is built with `httpx.Client(timeout=None)` and no option to change it:
    set the timeout on its session (a private attribute, hence the guard)."""
    import httpx

    session = getattr(getattr(cl, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(settings.chroma_timeout)


@contextlib.contextmanager
def quiet_panics():
    """A Rust panic inside chromadb prints 'thread panicked at …' (and a backtrace under
    RUST_BACKTRACE) straight to file descriptor 2 before it becomes the exception we explain.
    Hold fd 2's output while opening; replay it if the open succeeded, drop it if it failed."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        ok = False
        try:
            yield
            ok = True
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            output = held.read()
            if ok and output:
                os.write(2, output)


def forget_system(path: Path, stop: bool = True) -> None:
    """chromadb caches one System per path and keeps it even when starting it failed; the next
    client at that path would get the broken one ('no attribute bindings'). Drop it (and stop it,
    unless a working one is still in use: `store.reopen`)."""
    try:
        from chromadb.api.shared_system_client import SharedSystemClient

        system = SharedSystemClient._identifier_to_system.pop(str(path), None)
        SharedSystemClient._identifier_to_refcount.pop(str(path), None)
        if system is not None and stop:
            system.stop()
    except Exception:  # noqa: BLE001 - best effort: a half-started system may fail to stop
        pass


# The small system tables chromadb reads while it opens a store (it writes to the file, too).
_SYSTEM_TABLES = ("migrations", "tenants", "databases", "collections", "collection_metadata", "segments",
                  "segment_metadata", "max_seq_id")


def precheck(settings: Settings, path: Path) -> None:
    """Read the store's system tables read-only (~1 ms) before chromadb opens it: chromadb writes
    to the file while opening, then panics on a damaged page, so a damaged store would be changed
    by merely being looked at. Only damage is raised here; other trouble (permissions, a missing
    table of another Chroma version) is left to chromadb and `explain`."""
    db = path / "chroma.sqlite3"
    if not db.is_file():
        return
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            for table in _SYSTEM_TABLES:
                with contextlib.suppress(sqlite3.OperationalError):  # e.g. no such table
                    con.execute(f'SELECT count(*) FROM "{table}"').fetchone()
    except sqlite3.DatabaseError as e:
        if _CORRUPT_TEXT.search(str(e)):
            raise explain(e, settings) from None


def vectors_missing(settings: Settings, collection: str) -> str | None:
    """Is the HNSW graph of a non-empty collection gone from disk? Then chromadb answers every
    vector query from an empty graph, silently: a search ranks by BM25 alone, at half the usual
    scores, and nothing says why. Read from the store's tables read-only (~1 ms); embedded only.
    What is missing, or None (also when the store cannot be read: opening it reports that)."""
    db = settings.data_dir / "chroma" / "chroma.sqlite3"
    if settings.chroma_host or not db.is_file():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            seg = dict(con.execute("SELECT s.scope, s.id FROM segments s JOIN collections c ON s.collection = c.id "
                                   "WHERE c.name = ?", (collection,)).fetchall())
            filled = seg.get("METADATA") and con.execute(
                "SELECT 1 FROM embeddings WHERE segment_id = ? LIMIT 1", (seg["METADATA"],)).fetchone()
    except sqlite3.Error:
        return None
    graph = db.parent / str(seg.get("VECTOR")) / "data_level0.bin"
    if filled and (not graph.is_file() or graph.stat().st_size == 0):
        return f"the vector index of {collection} is missing ({graph})"
    return None


def _deep_check(cl, path: Path) -> None:
    """Read every collection once (and one vector query each) and run SQLite's quick_check:
    corruption that opening alone does not notice. Raises what it finds."""
    for col in cl.list_collections():
        col = cl.get_collection(getattr(col, "name", col), embedding_function=None)
        got = col.get(limit=1, include=["embeddings"])
        if got["ids"] and got.get("embeddings") is not None and len(got["embeddings"]):
            col.query(query_embeddings=[list(got["embeddings"][0])], n_results=1, include=[])
    db = path / "chroma.sqlite3"
    if db.exists():
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            verdict = con.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise StoreCorrupted(f"quick_check: {verdict}")


def recover(settings: Settings, clients: dict, lock) -> str | None:
    """Before a rebuild: if the embedded store is corrupted, move it aside so the rebuild starts
    from an empty one. Returns a note saying where it went, or None when the store is healthy
    (or absent, or a server). Other failures (read-only, a file in the way) are raised: moving
    the store would not fix them."""
    path = settings.data_dir / "chroma"
    if settings.chroma_host or not path.exists():
        return None
    from rag.index import store

    try:
        _deep_check(store.client(settings), path)
        return None
    except BaseException as e:  # noqa: BLE001 - classified below; Ctrl-C passes
        if fatal(e):
            raise
        problem = explain(e, settings)
        if not isinstance(problem, StoreCorrupted):
            raise problem from None
    _close(settings, path, clients, lock)
    aside = path.with_name(f"chroma.broken-{time.strftime('%Y%m%d-%H%M%S')}")
    path.rename(aside)
    return (f"the store at {path} was corrupted; moved it to {aside} (kept, not deleted: remove it when you "
            "no longer need it) and built a fresh index")


def _close(settings: Settings, path: Path, clients: dict, lock) -> None:
    with lock:
        for key in [k for k in clients if k[0] == str(settings.data_dir.resolve()) and k[1] is None]:
            cl = clients.pop(key)
            try:
                cl.close()
            except Exception:  # noqa: BLE001 - closing a broken client may fail; we drop it anyway
                pass
    forget_system(path)
