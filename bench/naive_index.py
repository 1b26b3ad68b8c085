"""The naive cold-index baseline, run as its own process: `python -m bench.naive_index`.

Same pipeline as `python -m rag index` (same corpus parsing, chunks, Chroma writes, the same
`build_index`), but the embedder makes one ONNX call per chunk: no batching and no length sorting,
which is what a first implementation does. Only the embedding strategy differs, so the ratio
isolates what the batching buys. Run as a subprocess so it pays the same interpreter start-up and
imports as the CLI; `seconds` spans the same work `IndexReport.seconds` does in the CLI (loading
the corpus, importing llama-index and loading the model, chunking, embedding, writing).

Prints one JSON object: {"seconds", "chunks_embedded", "chunks_total", "texts_embedded", "onnx_calls"}.
"""

from __future__ import annotations

import json
import time

from rag.index.build import build_index
from rag.settings import Settings


def naive_model():
    """MiniLM behind llama-index's interface, one text per ONNX call."""
    from rag.index.llama_embedding import MiniLMEmbedding

    class OneByOne(MiniLMEmbedding):
        calls: int = 0

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            self.calls += len(texts)
            return [self.engine.embed([t])[0].tolist() for t in texts]

    return OneByOne()


def main() -> None:
    settings = Settings()  # RAG_DATA_DIR / RAG_SEED_DIR come from the bench's environment
    t0 = time.perf_counter()
    model = naive_model()
    report = build_index(settings, embed_model=model)
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "chunks_embedded": report.chunks_embedded,
                      "chunks_total": report.chunks_total, "texts_embedded": model.engine.texts_embedded,
                      "onnx_calls": model.calls}))


if __name__ == "__main__":
    main()
