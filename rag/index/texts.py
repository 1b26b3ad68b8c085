"""The words of an index generation: each chunk's text and each paper's fields, stored once.

Chroma holds the vectors and the few keys filters need (`rag.index.build.CHUNK_KEYS`); the
text lives here, in `texts.sqlite` inside the generation folder, so it is switched atomically
with the BM25 arrays it matches. Chroma's embedded store keeps every document three times
(the metadata row, a B-tree index on it, and a trigram full-text index nothing here uses,
which its schema cannot turn off in embedded mode): ~5 KB a chunk at 100k papers, against
~1.5 KB here. SQLite (the stdlib driver) rather than a file format of our own: rows are read
by integer key in microseconds, and opening it reads nothing that grows with the corpus.

    chunks(row INTEGER PRIMARY KEY, text)   row = BM25 document row (title line + chunk text)
    papers(row INTEGER PRIMARY KEY, fields) row = paper row; fields = JSON of the paper's metadata
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

FILE = "texts.sqlite"


def save(folder: Path, chunk_texts: list[str], paper_fields: list[dict]) -> None:
    """Write the text store of a generation being built (its folder is renamed into place later)."""
    con = sqlite3.connect(folder / FILE)
    try:
        con.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
                          "CREATE TABLE chunks(row INTEGER PRIMARY KEY, text TEXT NOT NULL);"
                          "CREATE TABLE papers(row INTEGER PRIMARY KEY, fields TEXT NOT NULL);")
        con.executemany("INSERT INTO chunks VALUES (?, ?)", enumerate(chunk_texts))
        con.executemany("INSERT INTO papers VALUES (?, ?)",
                        ((i, json.dumps(f, ensure_ascii=False)) for i, f in enumerate(paper_fields)))
        con.commit()
    finally:
        con.close()


class Texts:
    """Read-only access by row. One connection, opened at once (a later index run may prune this
    generation's folder; an open file stays readable) and shared by the page's worker threads
    under a lock: a read is a few small rows, microseconds."""

    def __init__(self, folder: Path):
        path = folder / FILE
        if not path.exists():
            raise FileNotFoundError(path)
        self._con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        self._lock = threading.Lock()

    def chunks(self, rows: list[int]) -> dict[int, str]:
        return dict(self._read("chunks", "text", rows))

    def papers(self, rows: list[int]) -> dict[int, dict]:
        return {r: json.loads(f) for r, f in self._read("papers", "fields", rows)}

    def _read(self, table: str, column: str, rows: list[int]) -> list[tuple[int, str]]:
        wanted = sorted({int(r) for r in rows})
        if not wanted:
            return []
        marks = ",".join("?" * len(wanted))  # a query reads ~10-20 rows: far below SQLite's variable limit
        with self._lock:
            return self._con.execute(f"SELECT row, {column} FROM {table} WHERE row IN ({marks})", wanted).fetchall()
