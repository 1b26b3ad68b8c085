"""Chroma, embedded or server, and which collection is the live index.

A small registry collection (`<prefix>__registry`) names the live collection and its
generation (the local BM25 arrays and manifest, `rag.index.manifest`) in its metadata: one
metadata write switches both at once. A rebuild fills a brand-new collection, an update writes
its new chunks under new ids; only then does the pointer move, so a process killed at any
moment leaves a complete index in place. Leftovers of such a run are deleted by the next one.
The live collection's own metadata holds the fingerprint (embedding model + chunking settings)
it was built with.

Collections are created with explicit HNSW parameters (`HNSW`): Chroma's defaults
(ef_search 100, 16 neighbours) miss some of the exact top 10 and can rank differently from
process to process; these values give recall@10 >= 0.99 against brute force at 100k papers
(`make bench-scale`; ef_search 400 gave 0.986 there, 800 gave 0.992 at the same query time within
noise) and the same ranking in every process (tests/test_scale.py).

Chroma's own default embedding function would download a model, so every collection is
opened with `embedding_function=None` and we always pass vectors ourselves. Whole-collection
reads go through `pages` (chromadb fails on a single `get()` above 32,766 rows).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass

from rag.errors import IndexMissingError, StoreError
from rag.settings import Settings


_clients: dict[tuple, object] = {}
_clients_lock = threading.Lock()


def client(settings: Settings):
    """A Chroma client: embedded under data_dir, or HTTP when chroma_host is set. One per
    location and process: building one costs milliseconds, which every query would pay."""
    key = (str(settings.data_dir.resolve()), settings.chroma_host, settings.chroma_port)
    with _clients_lock:
        if key not in _clients:
            _clients[key] = _connect(settings)
        return _clients[key]


def reopen(settings: Settings) -> None:
    """Make the next `client` a new embedded Chroma. A process keeps the HNSW graph it loaded and
    never reads the records another process (`rag add` or `index` beside a running page) wrote
    after that; a new chromadb System loads the graph and replays them. The old System is left to
    whoever still holds it (a search in flight), not stopped under them."""
    if settings.chroma_host:
        return  # the server's graph is the shared one
    from rag.index.store_health import forget_system

    with _clients_lock:
        _clients.pop((str(settings.data_dir.resolve()), settings.chroma_host, settings.chroma_port), None)
        forget_system(settings.data_dir / "chroma", stop=False)


def _connect(settings: Settings):
    """Open Chroma; any failure becomes one StoreError naming the fix (rag.index.store_health)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from rag.index import store_health

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma_host:
        store_health.preflight(settings)  # chromadb's client has no timeout: a silent server would hang it
        try:
            cl = store_health.within_timeout(lambda: chromadb.HttpClient(
                host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings), settings)
        except StoreError:
            raise
        except Exception as e:  # chromadb raises ValueError / httpx errors depending on version
            raise store_health.explain(e, settings) from None
        store_health.bound_requests(cl, settings)
        return cl
    path = settings.data_dir / "chroma"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise store_health.explain_os(e, settings, path) from None
    store_health.precheck(settings, path)  # a damaged file is reported before chromadb writes to it
    try:
        with store_health.quiet_panics():
            return chromadb.PersistentClient(path=str(path), settings=chroma_settings)
    except BaseException as e:  # noqa: BLE001 - a corrupted file surfaces as a Rust panic (BaseException)
        if store_health.fatal(e):
            raise
        store_health.forget_system(path)
        raise store_health.explain(e, settings) from None


def recover(settings: Settings) -> str | None:
    """Before `index --rebuild`: move a corrupted embedded store aside (kept); a note or None."""
    from rag.index.store_health import recover as _recover

    return _recover(settings, _clients, _clients_lock)


HNSW = {"space": "cosine", "ef_construction": 200, "ef_search": 800, "max_neighbors": 32}


class IndexStaleError(StoreError):
    """The live index cannot serve these settings; only `python -m rag index` may fix that."""


@dataclass
class Active:
    collection: object  # chromadb Collection
    name: str
    fingerprint: str
    built_at: float
    generation: str = ""


def _registry(cl, settings: Settings):
    return cl.get_or_create_collection(f"{settings.collection}__registry", embedding_function=None)


def active(cl, settings: Settings) -> Active | None:
    """The live collection, or None when nothing was ever built."""
    pointer = _registry(cl, settings).metadata or {}
    name = pointer.get("active")
    if not name:
        return None
    try:
        col = cl.get_collection(name, embedding_function=None)
    except Exception:
        return None  # pointer to a collection someone deleted: treat as no index
    meta = col.metadata or {}
    return Active(col, name, meta.get("fingerprint", ""), float(pointer.get("switched_at", meta.get("built_at", 0))),
                  pointer.get("generation", ""))


def open_collection(settings: Settings, name: str):
    """The collection `name`, which a live pointer names; gone means an index run replaced it."""
    try:
        return client(settings).get_collection(name, embedding_function=None)
    except StoreError:
        raise
    except Exception:
        raise IndexStaleError(f"collection {name} is no longer in {where(settings)}; "
                              "rebuild the index with `python -m rag index`") from None


def where(settings: Settings) -> str:
    return (f"the Chroma server {settings.chroma_host}:{settings.chroma_port}" if settings.chroma_host
            else str(settings.data_dir))


def require_active(settings: Settings) -> Active:
    act = active(client(settings), settings)
    if act is None:
        raise IndexMissingError(f"no index in {where(settings)}; build it with `python -m rag index` (or `make index`)")
    return act


SYNC_THRESHOLD = 1000  # Chroma's default: records between two writes of the HNSW graph to disk


def new_collection(cl, settings: Settings, fingerprint: str, rows: int):
    """A fresh, empty collection for a rebuild of `rows` chunks; not live until `activate`.

    Chroma writes its HNSW graph to disk every `sync_threshold` records, and a process's first
    query replays the records written since from its log into the graph: up to 999 insertions,
    2-3 s at these parameters, paid by every `rag ask`. A rebuild therefore sets the threshold
    to its own row count (one write of the graph, at the end: none to replay) and `settled`
    puts Chroma's default back for later updates."""
    name = f"{settings.collection}_{fingerprint[:8]}_{time.time_ns()}"
    hnsw = {**HNSW, "sync_threshold": max(rows, 1)}
    return cl.create_collection(name, embedding_function=None, configuration={"hnsw": hnsw},
                                metadata={"fingerprint": fingerprint, "built_at": time.time()})


def compact(settings: Settings) -> str | None:
    """After a rebuild (embedded store): give back the pages its write log and the dropped old
    collection left free. A rebuild writes the graph once, at the end (`new_collection`), so the
    log held every vector until then; SQLite keeps freed pages in the file (~2 KB a chunk) until
    a VACUUM, the maintenance `chroma utils vacuum` runs. Best effort: a note when it cannot."""
    if settings.chroma_host:
        return None
    con = sqlite3.connect(settings.data_dir / "chroma" / "chroma.sqlite3", timeout=30)
    try:
        free, total = (con.execute(f"PRAGMA {p}").fetchone()[0] for p in ("freelist_count", "page_count"))
        if free > total // 4:
            con.execute("VACUUM")
    except sqlite3.Error as e:
        return f"could not compact the store ({e}); it works as is, only larger"
    finally:
        con.close()
    return None


def settled(collection) -> None:
    """After a rebuild's last write: the default sync threshold for whatever comes next."""
    collection.modify(configuration={"hnsw": {"sync_threshold": SYNC_THRESHOLD}})


def activate(cl, settings: Settings, name: str, generation: str) -> None:
    """Point the registry at (collection, generation): one metadata write, atomic. The local
    copy of the pointer (`manifest.read_live`) is dropped first; the index run rewrites it
    when everything after the switch (deletions, cleanup) is done."""
    from rag.index import manifest

    manifest.live_path(settings).unlink(missing_ok=True)
    _registry(cl, settings).modify(metadata={"active": name, "generation": generation, "switched_at": time.time()})


def drop_others(cl, settings: Settings, keep: str) -> None:
    """Delete every index collection but `keep`: old ones, and leftovers of killed rebuilds.
    Only ever called under the index lock, so it cannot delete another run's work in progress."""
    for other in cl.list_collections():
        other_name = getattr(other, "name", other)
        if owned_by(settings, other_name) and other_name != keep:
            cl.delete_collection(other_name)


def owned_by(settings: Settings, name: str) -> bool:
    """Is `name` one of this prefix's index collections (`<prefix>_<fingerprint>_<ns>`, see
    `create_collection`)? Another prefix may start with this one plus "_" (papers, papers_v2), and
    its collections must survive this one's clean-up."""
    return re.fullmatch(rf"{re.escape(settings.collection)}_[0-9a-f]{{8}}_\d+", name) is not None


def remove_orphans(settings: Settings) -> None:
    """Delete the HNSW folders no collection owns any more. chromadb's `delete_collection` drops
    the rows but leaves the collection's `chroma/<segment id>/` folder behind (chroma-core/chroma
    #5259, open), so every rebuild would leave a graph the size of the index on disk. A folder
    counts as an orphan only when its name is a UUID that no segment row names. Embedded only,
    under the index lock; best effort (a store that cannot be read keeps its folders)."""
    root = settings.data_dir / "chroma"
    if settings.chroma_host or not (root / "chroma.sqlite3").is_file():
        return
    try:
        with contextlib.closing(sqlite3.connect(f"file:{root / 'chroma.sqlite3'}?mode=ro", uri=True)) as con:
            owned = {row[0] for row in con.execute("SELECT id FROM segments")}
    except sqlite3.Error:
        return
    for folder in root.iterdir():
        if folder.is_dir() and _UUID.fullmatch(folder.name) and folder.name not in owned:
            shutil.rmtree(folder, ignore_errors=True)


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def pages(collection, settings: Settings, include: list[str]):
    """Every row of a collection, `settings.page_size` rows per read."""
    offset = 0
    while True:
        got = collection.get(limit=settings.page_size, offset=offset, include=include)
        if not got["ids"]:
            return
        yield got
        offset += len(got["ids"])


def get_by_ids(collection, settings: Settings, ids: list[str], include: list[str]) -> dict[str, tuple]:
    """id -> (document, metadata) for the ids that exist, read in pages."""
    out = {}
    for start in range(0, len(ids), settings.page_size):
        got = collection.get(ids=ids[start:start + settings.page_size], include=include)
        docs = got.get("documents") or [None] * len(got["ids"])
        metas = got.get("metadatas") or [None] * len(got["ids"])
        out.update({cid: (d, m) for cid, d, m in zip(got["ids"], docs, metas)})
    return out


def delete_ids(collection, settings: Settings, ids: list[str]) -> None:
    for start in range(0, len(ids), settings.page_size):
        collection.delete(ids=ids[start:start + settings.page_size])
