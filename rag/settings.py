"""One typed settings object. Every field can be overridden by a `RAG_<NAME>` environment
variable (`OLLAMA_HOST` is honoured too) or by keyword. Nothing is read at import time:
call `get_settings()` (cached) or build `Settings(...)` yourself.

Every field has bounds that match what the code consuming it accepts, so a bad value fails
here, as one `SettingsError` line naming the variable, its value and what it accepts, instead
of as a traceback (or a silent change of behaviour) deep inside a command. An empty variable
counts as unset.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.errors import InputError, SettingsError

Backend = Literal["auto", "ollama", "llamacpp", "extractive"]
EmbeddedModel = Literal["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "smollm2-135m"]  # keys of rag.llm.models.MODELS

# Chroma names collections 3-512 chars of [a-zA-Z0-9._-], starting and ending alphanumeric; ours
# are `<prefix>_<fingerprint>_<ns>` and `<prefix>__registry`, so the prefix must start with one.
_COLLECTION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_HOSTNAME = re.compile(r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")
# Ollama model names: `name`, `name:tag`, `namespace/name:tag`, `hf.co/user/repo:Q4_K_M`, `name@sha256:…`
_OLLAMA_MODEL = re.compile(r"[A-Za-z0-9][\w.\-:/@+]{0,255}")
GGML_MAX_THREADS = 256  # more than any CPU this runs on; llama.cpp itself crashes far above its limit
PROMPT_RESERVE = 128  # tokens of instructions + question that must fit beside evidence and answer


def _host(value: str) -> str:
    """A hostname or an IP address (what a socket can bind to or connect to)."""
    try:
        ipaddress.ip_address(value.strip("[]"))
        return value
    except ValueError:
        pass
    if not _HOSTNAME.fullmatch(value):
        raise ValueError("not a hostname or IP address (e.g. 127.0.0.1, localhost, gpu-box.lan)")
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", extra="forbid", validate_default=True,
                                      populate_by_name=True, env_ignore_empty=True)

    # corpus and storage
    seed_dir: Path = Field(Path("seeds"), description="Folder of *.txt listing pages to index.")
    data_dir: Path = Field(Path(".rag"), description="Where the embedded Chroma database lives.")
    collection: str = Field("papers", description="Name prefix of the Chroma collections: 1-63 of "
                            "[A-Za-z0-9._-], starting with a letter or digit (Chroma's naming rule).")
    chroma_host: str | None = Field(None, description="Chroma server host (`chroma run`); unset = embedded.")
    chroma_port: int = Field(8000, ge=1, le=65535, description="Chroma server port.")
    chroma_timeout: float = Field(30.0, gt=0, le=3600, allow_inf_nan=False,
                                  description="Seconds before a Chroma request is abandoned: a server's, "
                                  "or an embedded store another process holds locked (chromadb waits forever).")

    # chunking and embedding
    embed_backend: Literal["onnx", "ollama"] = Field("onnx", description="onnx = in-process MiniLM int8.")
    ollama_embed_model: str = Field("all-minilm", description="Embedding model when embed_backend=ollama.")
    # 64: the longest title here is 31 tokens and the chunker needs 20 more for text; 200: such a
    # chunk is at most 226 MiniLM word pieces here (it reads 256; 240 tokens reached 261).
    chunk_tokens: int = Field(180, ge=64, le=200, description="cl100k tokens per chunk, title included "
                              "(MiniLM reads 256 word pieces, ~1.13 per cl100k token).")
    chunk_overlap_sentences: int = Field(1, ge=0, le=3, description="Sentences repeated between windows.")
    embed_batch: int = Field(8, ge=1, le=128, description="Chunks per ONNX batch (small batches pad less; 8 "
                             "measured fastest; llama-index hands over at most 128 at a time).")

    # retrieval
    top_k: int = Field(8, ge=1, le=50, description="Papers returned by search / considered by ask.")
    candidates: int = Field(40, ge=5, le=1000, description="Chunks each retriever contributes before fusion.")
    rrf_k: int = Field(60, ge=1, le=1000, description="Reciprocal-rank-fusion constant.")
    bm25_lead: float = Field(1.4, ge=0.0, le=100.0, allow_inf_nan=False,
                             description="A paper BM25 scores at least this many times its runner-up leads the "
                                         "fused ranking (0 = plain fusion).")
    # a fresh process loads Chroma's whole HNSW graph on its first query (1.1-1.3 s at 100k papers)
    # while a scan of the generation's float32 vectors takes ~90 ms there: `make bench-scale`
    dense_search: Literal["auto", "hnsw", "exact"] = Field(
        "auto", description="Dense search: hnsw = Chroma's graph; exact = a scan of the index's stored vectors; "
        "auto = exact in one-question commands (`rag ask`, `rag search`) on the embedded store, else hnsw.")

    # answering
    backend: Backend = Field("auto", description="auto = Ollama if reachable with the model, else llamacpp.")
    ollama_host: str = Field("http://127.0.0.1:11434", validation_alias=AliasChoices("RAG_OLLAMA_HOST", "OLLAMA_HOST"),
                             description="Ollama server URL: http(s)://host[:port], or host[:port].")
    ollama_model: str = Field("llama3.2:3b", description="Ollama chat model (`ollama pull` it first).")
    ollama_num_ctx: int = Field(4096, ge=512, le=262144, description="Context window requested from Ollama.")
    ollama_timeout: float = Field(120.0, gt=0, le=3600, allow_inf_nan=False,
                                  description="Seconds before an Ollama request is abandoned.")
    llamacpp_model_path: Path | None = Field(None, description="Any GGUF file; overrides RAG_LLAMACPP_MODEL.")
    llamacpp_n_ctx: int = Field(2048, ge=256, le=32768, description="Context window of the embedded model "
                                "(32768: the largest window of the small models this runs; the KV cache grows with it).")
    llamacpp_threads: int = Field(0, ge=0, le=GGML_MAX_THREADS, description="CPU threads for llama.cpp; 0 = one "
                                  "per core (fastest on an idle machine; 1 is faster when another job holds a core).")
    max_answer_tokens: int = Field(160, ge=16, le=4096, description="Longest answer the Ollama model may write.")
    small_answer_tokens: int = Field(80, ge=16, le=1024, description="Longest answer the embedded model may write "
                                     "(it rambles and invents past two sentences).")
    # 4 lets a multi-paper answer draw on its shape's four papers; the other shapes take 1-2
    sources_in_prompt: int = Field(4, ge=1, le=10, description="Most papers whose evidence goes into the prompt.")
    # 320 -> 200 on dev: prompt 295 -> 251 tokens (~0.6 s less to the first token), model sentences
    # backed 0.90 -> 0.94, key-fact recall 0.888 -> 0.873 (one question); evals/reports/prompt-variants.md
    evidence_tokens: int = Field(200, ge=50, le=16384, description="Token budget for evidence in the embedded "
                                 "model's prompt.")
    ollama_evidence_tokens: int = Field(1800, ge=50, le=200000, description="Token budget for evidence with Ollama "
                                        "(capped by RAG_OLLAMA_NUM_CTX at answer time).")
    abstain_declined_below: float = Field(0.62, ge=0.0, le=2.0, allow_inf_nan=False,
                                          description="When the model declines (NOT FOUND, 'the sources do not …', or a fact "
                                          "answer that only echoes the question), abstain if the best evidence "
                                          "relevance is below this, else quote the evidence (tuned on the dev split).")
    # Which-paper answers are exempt (rag.answer.pipeline._backed_claims). A single threshold of 0.55,
    # tuned on dev with blind batches 12-15, over-fitted them: the blind batches since put answerable
    # "where does X come up" questions at 0.46-0.54. Over all of dev with batch 18, 0.55 alone abstains
    # on 14 unanswerables and 10 answerable questions, 0.45 alone on 5 and none. Between the two, the
    # answerable ones' top paper was ranked top 3 by both retrievers (11 of 13), the unanswerables'
    # was not (8 of 9): together 13 and 2 (rag.answer.pipeline._weak_unbacked).
    abstain_unbacked_below: float = Field(0.45, ge=0.0, le=2.0, allow_inf_nan=False,
                                          description="When nothing the model wrote about papers (asked 'which papers …') can be "
                                          "verified (beyond naming them), abstain if the best evidence relevance is below "
                                          "this, else quote the evidence (tuned on the dev split).")
    abstain_unagreed_below: float = Field(0.55, ge=0.0, le=2.0, allow_inf_nan=False,
                                          description="… and abstain below this relevance too when the two retrievers "
                                          "(BM25 and dense) do not both rank the top paper in their top 3 (tuned on the dev split).")
    abstain_below: float = Field(0.40, ge=0.0, le=1.0, allow_inf_nan=False,
                                 description="Abstain when the best evidence relevance is below this, 0-1 "
                                 "(0 = only when nothing matches; tuned on the dev split).")

    # UI
    ui_host: str = Field("127.0.0.1", description="Gradio bind address (never a public share link).")
    ui_port: int = Field(7860, ge=1, le=65535, description="Gradio port.")

    def __init__(self, **values):
        try:
            super().__init__(**values)
        except ValidationError as e:
            raise SettingsError(describe(e, keywords=set(values))) from None

    @field_validator("seed_dir", "data_dir", "llamacpp_model_path", "library_dir", "models_dir")
    @classmethod
    def _path(cls, v: Path | None) -> Path | None:
        if v is not None and ("\x00" in str(v) or not str(v).strip()):
            raise ValueError("not a usable path")
        return v.expanduser() if v is not None else None  # `~/x` from a .env or quotes, not a folder named ~

    @field_validator("bm25_lead")
    @classmethod
    def _lead(cls, v: float) -> float:
        if 0 < v < 1:  # "at least half its runner-up" would hold for every question
            raise ValueError("must be 0 (plain fusion) or at least 1, e.g. 1.4")
        return v

    @field_validator("collection")
    @classmethod
    def _collection(cls, v: str) -> str:
        if not _COLLECTION.fullmatch(v) or ".." in v:
            raise ValueError("use 1-63 of A-Z a-z 0-9 . _ -, starting with a letter or digit")
        return v

    @field_validator("chroma_host")
    @classmethod
    def _chroma_host(cls, v: str | None) -> str | None:
        return _host(v.strip()) if v and v.strip() else None

    @field_validator("ui_host")
    @classmethod
    def _ui_host(cls, v: str) -> str:
        return _host(v.strip())

    @field_validator("ollama_model", "ollama_embed_model")
    @classmethod
    def _model_name(cls, v: str) -> str:
        if not _OLLAMA_MODEL.fullmatch(v.strip()):
            raise ValueError("not an Ollama model name (e.g. llama3.2:3b, qwen2.5:7b-instruct)")
        return v.strip()

    # corpus: the user's own papers (rag.corpus.library)
    library_dir: Path = Field(Path("library"), description="Folder holding copies of the files added with "
                              "`python -m rag add` (BibTeX, arXiv Atom, JSONL, CSV, listing pages); indexed with the seeds.")

    # embedded runtime and model files (rag.llm.llamacpp, rag.llm.models, rag.llm.probe)
    llamacpp_model: EmbeddedModel = Field("qwen2.5-coder-1.5b", description="Embedded model (see rag.llm.models); "
                                          "`make models` assembles and verifies its file.")
    models_dir: Path | None = Field(None, description="Assembled GGUFs, their checksums and runtime verdicts; "
                                    "unset = <venv>/share/paper-rag/models.")
    llamacpp_batch: int = Field(512, ge=32, le=4096, description="Prompt tokens per llama.cpp batch (n_batch = n_ubatch).")
    llamacpp_flash_attn: bool = Field(False, description="llama.cpp flash attention (measured in bench/runtime.md).")
    llamacpp_repack: bool = Field(False, description="llama.cpp's repacked weight layouts (its 'extra buffer types', "
                                  "AMX among them); off is faster here: load 1.5 -> 1.0 s, prompt 1.2-1.3x (reports/runtime.md).")
    llamacpp_repeat_penalty: float = Field(1.3, ge=1.0, le=2.0, description="Repeat penalty for the small model "
                                           "(SmolLM2 loops without it); larger models use 1.0.")
    probe_timeout: float = Field(300.0, gt=0, le=3600, allow_inf_nan=False, description="Seconds the child-process test generation may take.")

    # scale: index layout and paging (rag/index/store.py, build.py)
    page_size: int = Field(5000, ge=1, le=30000, description="Rows per Chroma read/delete; chromadb fails on one "
                           "request above 32,766 SQL variables.")

    @field_validator("ollama_host")
    @classmethod
    def _url(cls, v: str) -> str:
        v = v.strip().rstrip("/")
        v = v if "://" in v else f"http://{v}"  # OLLAMA_HOST is often given as host:port
        parts = urlsplit(v)
        try:
            parts.port  # raises on a non-numeric or out-of-range port
        except ValueError as e:
            raise ValueError(f"bad port ({e}); use http://host:port, e.g. http://127.0.0.1:11434") from None
        if parts.username or parts.password:  # unsupported, and the URL is echoed in errors: refuse it
            raise ValueError("holds a user name or password, which this client cannot send; give "
                             "http://host:port and put the credentials in a proxy in front of Ollama")
        if parts.scheme not in ("http", "https") or not parts.hostname or re.search(r"\s", v):
            raise ValueError("not an http(s) URL; use http://host:port, e.g. http://127.0.0.1:11434")
        _host(parts.hostname)
        return v

    @model_validator(mode="after")
    def _fits(self) -> "Settings":
        """Limits that only make sense together: each answer must fit its model's window."""
        if self.max_answer_tokens + PROMPT_RESERVE > self.ollama_num_ctx:
            raise ValueError(f"RAG_MAX_ANSWER_TOKENS={self.max_answer_tokens} does not fit in RAG_OLLAMA_NUM_CTX="
                             f"{self.ollama_num_ctx} with room for the question; lower the first or raise the second")
        if self.small_answer_tokens + self.evidence_tokens + PROMPT_RESERVE > self.llamacpp_n_ctx:
            raise ValueError(f"RAG_SMALL_ANSWER_TOKENS={self.small_answer_tokens} + RAG_EVIDENCE_TOKENS="
                             f"{self.evidence_tokens} do not fit in RAG_LLAMACPP_N_CTX={self.llamacpp_n_ctx}; "
                             "lower them or raise RAG_LLAMACPP_N_CTX")
        if _overlap(self.library_dir, self.seed_dir) or _overlap(self.library_dir, self.data_dir):
            raise ValueError(f"RAG_LIBRARY_DIR={str(self.library_dir)!r} overlaps RAG_SEED_DIR={str(self.seed_dir)!r} "
                             f"or RAG_DATA_DIR={str(self.data_dir)!r}: `add` would overwrite seed pages or index "
                             "files; give the library a folder of its own")
        return self

    def with_overrides(self, **overrides) -> "Settings":
        """A copy with some fields replaced; a bad value raises InputError naming it."""
        clean = {k: v for k, v in overrides.items() if v is not None}
        try:
            return Settings(**{**self.model_dump(), **clean})
        except SettingsError as e:
            raise InputError(str(e)) from None


_ALIASES = {"RAG_OLLAMA_HOST": ("RAG_OLLAMA_HOST", "OLLAMA_HOST")}


def _variable(loc: str, keywords: set[str]) -> str:
    """The name the user wrote: a keyword as given, else the environment variable that is set."""
    field = "ollama_host" if loc in _ALIASES else loc
    if field in keywords:
        return field
    names = _ALIASES.get(loc, ("RAG_" + loc.upper(),))
    return next((n for n in names if os.environ.get(n)), names[0])


def describe(e: ValidationError, prefix: str = "RAG_", keywords: set[str] | None = None) -> str:
    """One line naming the bad setting, its value and what it accepts."""
    err = e.errors()[0]
    msg = re.sub(r"^(Value|Assertion) error, ", "", err["msg"])
    if not err.get("loc"):  # a rule about several fields: the message names them
        return f"settings do not fit together: {msg}; fix or unset them"
    loc = str(err["loc"][0])
    name = _variable(loc, keywords or set()) if prefix else loc
    value = err.get("input")
    if isinstance(value, float) and not math.isfinite(value):
        value = str(value)
    if isinstance(value, str):  # a password in a URL is never echoed
        value = re.sub(r"(://)[^/@\s]*@", r"\1…@", value)
    return f"setting {name}={value!r} is invalid: {msg}; fix or unset it"


def _overlap(a: Path, b: Path) -> bool:
    """Is one folder the other, or inside it?"""
    a, b = a.expanduser().resolve(), b.expanduser().resolve()
    return a == b or a in b.parents or b in a.parents


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    for warning in unknown_variables(os.environ):  # once per process: get_settings is cached
        print(f"warning: {warning}", file=sys.stderr)
    return Settings()


def unknown_variables(environ) -> list[str]:
    """RAG_* variables that name no setting, each with the nearest one: pydantic-settings ignores
    them, so a typo (RAG_TOPK=3) would otherwise change nothing without a word."""
    known = {f"RAG_{name.upper()}" for name in Settings.model_fields}
    out = []
    for name in sorted(n for n in environ if n.startswith("RAG_") and n not in known):
        near = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.8)
        out.append(f"{name} is not a setting and is ignored" + (f"; did you mean {near[0]}?" if near else
                                                                   "; the README's Settings table lists them"))
    return out
