"""Offline, cited question answering over research-paper abstracts.

    import rag
    rag.search("asynchronous RL post-training", k=5)   # -> [Hit(paper_id, title, score, ...)]
    rag.ask("How many benchmarks did the multilingual position paper examine?")
                                                       # -> Answer(text, citations, abstained, ...)

Names are imported lazily: `import rag` costs nothing until a function is used, so the CLI
starts fast and never pulls in what it does not need.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "search": "rag.query.retrieval",
    "Filters": "rag.query.retrieval",
    "Hit": "rag.query.retrieval",
    "ask": "rag.answer.pipeline",
    "ask_stream": "rag.answer.pipeline",
    "Answer": "rag.answer.types",
    "Citation": "rag.answer.types",
    "build_index": "rag.index.build",
    "IndexReport": "rag.index.build",
    "index_status": "rag.index.status",
    "load_corpus": "rag.corpus.listing",
    "load_all": "rag.corpus",
    "add_files": "rag.corpus.manage",
    "remove_paper": "rag.corpus.manage",
    "Paper": "rag.corpus.listing",
    "Settings": "rag.settings",
    "get_settings": "rag.settings",
    "RagError": "rag.errors",
    "InputError": "rag.errors",
    "CorpusError": "rag.errors",
    "IndexMissingError": "rag.errors",
    "StoreError": "rag.errors",
    "StoreCorrupted": "rag.errors",
    "SettingsError": "rag.errors",
    "BackendError": "rag.errors",
    "BackendUnavailable": "rag.errors",
    "ContextOverflow": "rag.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
