"""The lexical side of an index generation: a saved bm25s index plus compact numpy arrays.

Built at index time and saved in a generation folder beside its collection (see
`rag.index.manifest`); loaded memory-mapped at query time, so opening it costs milliseconds
and resident memory grows only with the pages a query touches (a query's postings are read with
pread rather than touched through the map, and mapped pages are dropped after each step: see
`FileSlices`, `Lexicon.similarities`). Row `i` of every per-chunk array is BM25 document `i`:

    chunk_ids.npy     chunk id (fixed-width unicode)        sorted_ids.npy   the same, sorted
    chunk_order.npy   row of each sorted id (for id -> row lookups by binary search)
    chunk_paper.npy   row of the chunk's paper (int32)
    paper_ids.npy     paper id                              paper_head.npy   row of its chunk 0
    paper_date.npy    date as yyyymmdd (int32, 0 = unknown)  paper_org.npy    index into orgs.json (-1 = none)
                      (mmdd or dd 00: only the year or month is known, see `date_span`)
    vectors.npy       the chunk's embedding, float32 (1,536 bytes a chunk at 384 dimensions)
    texts.sqlite      chunk texts and paper fields by row (`rag.index.texts`)

The vectors serve filtered dense search: Chroma's own filtered query (a `where` on metadata)
took 65–125 ms at 20k chunks and grows with the collection, while an exact dot product over the
rows a filter allows is a few milliseconds for tens of thousands of rows (`rag.query.retrieval`).
They also serve the exact scan of one-question processes (`RAG_DENSE_SEARCH`). They are float32,
not float16, because numpy has no fast float16 conversion here: scanning 255k chunks took 0.31 s
from float16 and 0.03 s from float32.

Filters become boolean masks over these arrays; top-k is a partial sort (np.argpartition),
never a full argsort or a Python loop over the corpus.
"""

from __future__ import annotations

import json
import mmap
import os
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from rag.index import texts as text_store

ARRAYS = ("chunk_ids", "sorted_ids", "chunk_order", "chunk_paper", "paper_ids", "paper_head", "paper_date", "paper_org")


@dataclass
class Rows:
    """What a generation is built from: one entry per chunk, grouped by paper in order."""

    chunk_ids: list[str]
    texts: list[str]  # what BM25 indexes and the embedder saw (title line + chunk text)
    paper_ids: list[str]  # per chunk
    heads: list[bool]  # chunk 0 of its paper
    paper_date: dict[str, int]  # paper id -> yyyymmdd (0 unknown)
    paper_org: dict[str, str | None]
    paper_fields: dict[str, dict]  # paper id -> its metadata (title, abstract, sources…): `rag.index.texts`


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(texts: list[str], return_ids: bool = True):
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer(), return_ids=return_ids, show_progress=False)


def save(rows: Rows, vectors: np.ndarray, target: Path) -> None:
    """Write the generation into `target` atomically: a temp folder, fsync, then rename."""
    import bm25s

    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model = bm25s.BM25()
    model.index(tokenize(rows.texts), show_progress=False)
    model.save(str(tmp), show_progress=False)
    for name, arr in _arrays(rows).items():
        np.save(tmp / f"{name}.npy", arr)
    text_store.save(tmp, rows.texts, [rows.paper_fields[pid] for pid in dict.fromkeys(rows.paper_ids)])
    np.save(tmp / "vectors.npy", np.asarray(vectors, dtype=VECTOR_DTYPE))
    orgs = sorted({o for o in rows.paper_org.values() if o})
    (tmp / "orgs.json").write_text(json.dumps(orgs, ensure_ascii=False))
    fsync_dir(tmp)
    os.replace(tmp, target)
    fsync_dir(target.parent)


def _arrays(rows: Rows) -> dict[str, np.ndarray]:
    pids = list(dict.fromkeys(rows.paper_ids))  # papers in first-chunk order
    prow = {pid: i for i, pid in enumerate(pids)}
    orgs = sorted({o for o in rows.paper_org.values() if o})
    org_row = {o: i for i, o in enumerate(orgs)}
    chunk_ids = np.array(rows.chunk_ids, dtype=str)
    head = np.zeros(len(pids), dtype=np.int32)
    for i, (pid, is_head) in enumerate(zip(rows.paper_ids, rows.heads)):
        if is_head:
            head[prow[pid]] = i
    order = np.argsort(chunk_ids, kind="stable").astype(np.int32)
    return {"chunk_ids": chunk_ids, "sorted_ids": chunk_ids[order], "chunk_order": order,
            "chunk_paper": np.array([prow[p] for p in rows.paper_ids], dtype=np.int32),
            "paper_ids": np.array(pids, dtype=str), "paper_head": head,
            "paper_date": np.array([rows.paper_date.get(p, 0) for p in pids], dtype=np.int32),
            "paper_org": np.array([org_row.get(rows.paper_org.get(p) or "", -1) for p in pids], dtype=np.int32)}


def date_span(dates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last day (yyyymmdd) each paper may be from: a year-only date (20230000) spans the
    year, a month (20240300) the month. A date filter keeps a paper whose span meets its range, so
    `--from 2023 --to 2023` finds a BibTeX entry that gives only `year = {2023}`."""
    last = np.where(dates % 10000 == 0, dates + 9999, np.where(dates % 100 == 0, dates + 99, dates))
    return dates, last


def fsync_dir(path: Path) -> None:
    """Make a folder's files and entries durable before a pointer names it."""
    for f in path.iterdir() if path.is_dir() else []:
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Lexicon:
    """A loaded generation: BM25 scores and the filter/listing arrays (memory-mapped), and its texts."""

    def __init__(self, folder: Path):
        import bm25s

        self.folder = folder
        self.bm25 = bm25s.BM25.load(str(folder), mmap=True, load_corpus=False, show_progress=False)
        for name in ARRAYS:
            setattr(self, name, np.load(folder / f"{name}.npy", mmap_mode="r"))
        self.orgs: list[str] = json.loads((folder / "orgs.json").read_text())
        self.vectors = np.load(folder / "vectors.npy", mmap_mode="r")
        # read at random: without the hint each page fault reads ahead up to 128 KB of neighbours
        self._maps = [m for m in (getattr(a, "_mmap", None) for a in self._arrays()) if m is not None]
        for m in self._maps:
            m.madvise(mmap.MADV_RANDOM)
        # postings are read, not mapped: see `FileSlices`; so is a scan of every vector (`similarities`)
        self._postings = {k: FileSlices(self.bm25.scores[k]) for k in ("data", "indices")}
        self._vector_rows = FileSlices(self.vectors)
        self.texts = text_store.Texts(folder)

    def _arrays(self) -> list[np.ndarray]:
        return [self.vectors, *(getattr(self, n) for n in ARRAYS), *(self.bm25.scores[k] for k in ("data", "indices", "indptr"))]

    def release(self) -> None:
        """Drop this process's mapped pages after a query. The data stays in the kernel's page
        cache (the next touch is a minor fault, microseconds), but the process's resident set no
        longer accumulates every postings list and vector page any query ever touched."""
        for m in self._maps:
            m.madvise(mmap.MADV_DONTNEED)

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def scores(self, question: str, mask: np.ndarray | None) -> np.ndarray | None:
        """BM25 score of every chunk (masked chunks score 0), or None when no query term is indexed."""
        tokens = tokenize([question], return_ids=False)[0]
        ids = self.bm25.get_tokens_ids(tokens)
        if not ids:
            return None
        scores = _score({**self.bm25.scores, **self._postings}, np.asarray(ids, dtype=np.int64))
        return scores if mask is None else scores * mask

    def similarities(self, rows: np.ndarray, qvec: np.ndarray) -> np.ndarray:
        """Cosine of `qvec` with the stored vectors of `rows` (ascending), one window at a time.

        Every row (a scan, `dense_search=exact`): each window is read with preadv into one
        buffer, in file order, so the kernel reads ahead. Through the map, which is advised
        MADV_RANDOM for the scattered reads below, a scan of a file not in the page cache faulted
        in one 4 KB page at a time: 7.8-9.0 s for the 392 MB of vectors at 100k papers, against
        0.3 s read (warm: 62-67 ms mapped, 71-79 ms read; a fresh buffer per window: 107-120 ms).
        Some rows (a filter): gathered through the map, each window's pages dropped before the
        next. Touching one scattered row maps its whole neighbourhood (the kernel's fault-around,
        a large folio): at 100k papers the ~2k rows of an organisation filter mapped all 187 MB
        of a float16 vectors.npy, and that, not the steady state, set the search process's peak
        RSS (1,045 MB in `make bench-scale`)."""
        sims, pages = np.empty(len(rows), dtype=np.float32), getattr(self.vectors, "_mmap", None)
        whole = len(rows) == len(self)
        window = np.empty((min(VECTOR_WINDOW, len(rows)), *self.vectors.shape[1:]), self.vectors.dtype) if whole else None
        cuts = np.searchsorted(rows, np.arange(VECTOR_WINDOW, len(self) + VECTOR_WINDOW, VECTOR_WINDOW))
        start = 0
        for end in np.unique(cuts):
            if end > start:
                block = self._vector_rows.read_into(start, window[:end - start]) if whole else self.vectors[rows[start:end]]
                sims[start:end] = np.asarray(block, dtype=np.float32) @ qvec
                if pages is not None and not whole:
                    pages.madvise(mmap.MADV_DONTNEED)
            start = end
        return sims

    def prefetch_vectors(self) -> None:
        """Ask the kernel to read vectors.npy into the page cache now (it returns once the reads
        are queued): a scan-only process calls this at open, so the disk read overlaps the query
        model's load instead of following it."""
        self._vector_rows.prefetch()

    def paper_mask(self, date_from: int | None, date_to: int | None, org: str | None) -> np.ndarray:
        keep = np.ones(len(self.paper_ids), dtype=bool)
        if date_from is not None or date_to is not None:
            first, last = date_span(np.asarray(self.paper_date))
            keep &= first > 0
            keep &= last >= (date_from or 0)
            keep &= first <= (date_to or 99999999)
        if org is not None:
            allowed = np.array([i for i, o in enumerate(self.orgs) if org.casefold() in o.casefold()], dtype=np.int32)
            keep &= np.isin(np.asarray(self.paper_org), allowed)
        return keep

    def rows_of(self, chunk_ids: list[str]) -> np.ndarray:
        """Row of each chunk id, -1 for ids this generation does not hold (orphans of a killed run)."""
        out = np.full(len(chunk_ids), -1, dtype=np.int64)
        if not chunk_ids or not len(self):
            return out
        width = self.sorted_ids.dtype.itemsize // 4
        fits = np.array([len(c) <= width for c in chunk_ids])  # a longer id is not here (and must not be cut)
        # the haystack's own dtype: another width makes numpy convert (copy) the whole memory-mapped array
        wanted = np.array(chunk_ids, dtype=self.sorted_ids.dtype)
        pos = np.minimum(np.searchsorted(self.sorted_ids, wanted), len(self) - 1)
        found = (self.sorted_ids[pos] == wanted) & fits
        out[found] = np.asarray(self.chunk_order)[pos[found]]
        return out


VECTOR_DTYPE = np.float32  # older generations hold float16: read the same, scanned ~10x slower
VECTOR_WINDOW = 16_384  # rows of vectors.npy scored between two releases (25 MB at 384 float32 dimensions)


class FileSlices:
    """Slices of a saved .npy array read with pread instead of through its memory map.

    A query reads each of its tokens' postings once. Through the map, every touched page also
    maps its neighbours (fault-around, large folios) and stays in the resident set until
    released; read, a token's postings are a buffer freed after use, and the file stays in the
    page cache all the same. A scan of every stored vector reads them this way too, in file
    order (`Lexicon.similarities`). numpy has no positional read of a slice, hence this small class."""

    def __init__(self, array: np.ndarray):
        self.dtype = array.dtype
        self._row = int(np.prod(array.shape[1:], dtype=np.int64))  # items a row (1 for postings)
        self._file = open(array.filename, "rb", buffering=0)
        self._offset = array.offset

    def __getitem__(self, span: slice) -> np.ndarray:
        """Items start..stop of a 1-D array (the postings); rows of a table go through `read_into`."""
        size = self.dtype.itemsize
        data = os.pread(self._file.fileno(), (span.stop - span.start) * size, self._offset + span.start * size)
        return np.frombuffer(data, dtype=self.dtype)

    def read_into(self, start: int, out: np.ndarray) -> np.ndarray:
        """Rows start..start+len(out) read into `out` (of this array's dtype and row shape)."""
        view = memoryview(out).cast("B")
        got = os.preadv(self._file.fileno(), [view], self._offset + start * self.dtype.itemsize * self._row)
        if got != len(view):
            raise OSError(f"{self._file.name}: read {got} of {len(view)} bytes at row {start}; the file is "
                          "shorter than its header says: rebuild the index with `python -m rag index --rebuild`")
        return out

    def prefetch(self) -> None:
        os.posix_fadvise(self._file.fileno(), 0, 0, os.POSIX_FADV_WILLNEED)


def _score(matrix: dict, token_ids: np.ndarray) -> np.ndarray:
    """Sum of the query tokens' precomputed BM25 columns (bm25s's CSC layout), one token at a
    time: a column holds each chunk at most once, so `scores[rows] += weights` is exact, and the
    temporaries are one token's postings. (bm25s's own loop calls np.add.at per token, several
    times slower; one np.bincount over every touched posting, concatenated and widened to
    int64/float64, cost 24 bytes a posting: ~70 MB for the widest gold question at 100k papers,
    2.8M postings.) The sums run
    in float64 in token order, as that bincount did, so the scores are unchanged."""
    indptr, indices, data = matrix["indptr"], matrix["indices"], matrix["data"]
    scores = np.zeros(matrix["num_docs"], dtype=np.float64)
    for t in token_ids:
        a, b = int(indptr[t]), int(indptr[t + 1])
        scores[indices[a:b]] += data[a:b]
    return scores.astype(np.float32)


def top_k(scores: np.ndarray, k: int, positive: bool = True) -> np.ndarray:
    """Indices of the k highest (positive) scores, best first (ties by index), by partial sort."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-scores, k - 1)[:k]
    if positive:
        part = part[scores[part] > 0]
    return part[np.lexsort((part, -scores[part]))]
