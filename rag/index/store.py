"""Chroma, embedded or server, and which collection is the live index.

A small registry collection (`<prefix>__registry`) names the active collection in its
metadata. A rebuild fills a brand-new collection and only then moves the pointer, so a
process killed mid-rebuild leaves the previous index in place and usable; leftovers of such
a run are deleted by the next successful one. The active collection's own metadata holds the
fingerprint (embedding model + chunking settings) it was built with.

Chroma's own default embedding function would download a model, so every collection is
opened with `embedding_function=None` and we always pass vectors ourselves.
"""

from __future__ import annotations

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


@dataclass
class Active:
    collection: object  # chromadb Collection
    name: str
    fingerprint: str
    built_at: float


def _registry(cl, settings: Settings):
    return cl.get_or_create_collection(f"{settings.collection}__registry", embedding_function=None)


def active(cl, settings: Settings) -> Active | None:
    """The live collection, or None when nothing was ever built."""
    name = (_registry(cl, settings).metadata or {}).get("active")
    if not name:
        return None
    try:
        col = cl.get_collection(name, embedding_function=None)
    except Exception:
        return None  # pointer to a collection someone deleted: treat as no index
    meta = col.metadata or {}
    return Active(col, name, meta.get("fingerprint", ""), float(meta.get("built_at", 0)))


def require_active(settings: Settings) -> Active:
    act = active(client(settings), settings)
    if act is None:
        where = (f"the Chroma server {settings.chroma_host}:{settings.chroma_port}" if settings.chroma_host
                 else str(settings.data_dir))
        raise IndexMissingError(f"no index in {where}; build it with `python -m rag index` (or `make index`)")
    return act


def new_collection(cl, settings: Settings, fingerprint: str):
    """A fresh, empty collection for a rebuild; not live until `activate`."""
    name = f"{settings.collection}_{fingerprint[:8]}_{time.time_ns()}"
    return cl.create_collection(name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}},
                                metadata={"fingerprint": fingerprint, "built_at": time.time()})


def activate(cl, settings: Settings, name: str) -> None:
    """Point the registry at `name` (one metadata write), then drop every other index collection."""
    _registry(cl, settings).modify(metadata={"active": name, "switched_at": time.time()})
    drop_others(cl, settings, name)


def drop_others(cl, settings: Settings, keep: str) -> None:
    """Delete every index collection but `keep`: old ones, and leftovers of killed rebuilds."""
    registry = f"{settings.collection}__registry"
    for other in cl.list_collections():
        other_name = getattr(other, "name", other)
        if other_name.startswith(f"{settings.collection}_") and other_name not in (keep, registry):
            cl.delete_collection(other_name)


def touch(col) -> None:
    """Record when an incremental update last changed the live collection."""
    meta = dict(col.metadata or {})
    meta["built_at"] = time.time()
    meta.pop("hnsw:space", None)  # immutable after creation; Chroma refuses to modify it
    col.modify(metadata=meta)
