"""The embedding models as llama-index `BaseEmbedding`s, used by the indexer.

Kept apart from `rag.embedding` because importing llama_index.core costs 3–5 s, which the
query path (`search`, `ask`) must not pay: it calls the `MiniLM` engine directly.
"""

from __future__ import annotations

from functools import lru_cache

from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

from rag.errors import BackendError, BackendUnavailable
from rag.index.embedding import MODEL_NAME, MiniLM, get_minilm
from rag.settings import Settings


class MiniLMEmbedding(BaseEmbedding):
    """all-MiniLM-L6-v2 (ONNX int8) behind llama-index's embedding interface."""

    _engine: MiniLM = PrivateAttr()
    _onnx_batch: int = PrivateAttr()

    def __init__(self, engine: MiniLM | None = None, onnx_batch: int = 8, **kwargs):
        # llama-index hands us up to 128 texts per call; the engine sorts them by length and
        # runs ONNX in small batches of similar length, which pads least (measured fastest).
        super().__init__(model_name=MODEL_NAME, embed_batch_size=128, **kwargs)
        self._engine = engine or get_minilm()
        self._onnx_batch = onnx_batch

    @property
    def engine(self) -> MiniLM:
        return self._engine

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._engine.embed([query])[0].tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._engine.embed([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._engine.embed(texts, batch_size=self._onnx_batch).tolist()


def embed_model_for(settings: Settings) -> BaseEmbedding:
    """The embedding model the settings ask for."""
    if settings.embed_backend == "ollama":
        return _ollama(settings.ollama_host, settings.ollama_embed_model, settings.embed_batch, settings.ollama_timeout)
    return MiniLMEmbedding(onnx_batch=settings.embed_batch)


@lru_cache(maxsize=8)
def _ollama(host: str, model: str, batch: int, timeout: float) -> BaseEmbedding:
    """One OllamaEmbedding per (host, model, batch, timeout) and process: building one costs ~70 ms
    (two httpx clients), which every query embedded through Ollama paid. The `ollama` client waits
    forever by default; RAG_OLLAMA_TIMEOUT bounds each embedding request as it does each chat."""
    from llama_index.embeddings.ollama import OllamaEmbedding

    return OllamaEmbedding(model_name=model, base_url=host, embed_batch_size=batch, client_kwargs={"timeout": timeout})


def ollama_embed(settings: Settings, fn, *args):
    """fn(*args) against the Ollama embedding host; its failures become one BackendError naming the
    fix (they surfaced as "unexpected ConnectionError … this is a bug", exit 1)."""
    import httpx
    import ollama

    try:
        return fn(*args)
    except Exception as e:
        where = f"the Ollama embedding host {settings.ollama_host} (RAG_EMBED_BACKEND=ollama)"
        if isinstance(e, ollama.ResponseError) and e.status_code == 404:
            raise BackendUnavailable(f"{where} does not have {settings.ollama_embed_model!r}; run `ollama pull "
                                     f"{settings.ollama_embed_model}` there or set RAG_OLLAMA_EMBED_MODEL") from None
        if isinstance(e, httpx.TimeoutException):
            raise BackendUnavailable(f"{where} did not answer within "
                                     f"RAG_OLLAMA_TIMEOUT={settings.ollama_timeout:g} s") from None
        if isinstance(e, (ConnectionError, httpx.TransportError)):
            raise BackendUnavailable(f"{where} is not reachable; start it (`ollama serve`) or point OLLAMA_HOST at it "
                                     "(RAG_EMBED_BACKEND=onnx needs `python -m rag index` first)") from None
        if isinstance(e, ollama.ResponseError):
            raise BackendError(f"{where} failed: {e.error} (HTTP {e.status_code})") from None
        raise
