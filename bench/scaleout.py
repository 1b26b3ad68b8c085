"""`make bench-scaleout`: the scale-out path (a Chroma server, an Ollama embedding host) against
the in-process pieces, on one synthetic corpus, all four combinations in the same run.

Corpus: `bench.scale.write_corpus` (synthetic listing pages of real seed sentences), ~2,000
papers by default. Every configuration goes through the project's own code only: `Settings` ->
`build_index` (real chunking, real embedding calls, real Chroma writes, the BM25 generation) ->
`Retriever(settings).search`. Nothing is stubbed except what the next paragraph says.

Configurations (each its own data dir and collection prefix, so they never share a registry):
1. embedded Chroma + in-process ONNX MiniLM (the default; the baseline);
2. `chroma run` on 127.0.0.1 (a child process) + ONNX;
3. embedded Chroma + `RAG_EMBED_BACKEND=ollama` against `tests/ollama_fake.FakeOllama` on
   127.0.0.1 (a child process speaking Ollama's real REST API, `/api/embed`);
4. the Chroma server + the Ollama embedder.

FakeOllama computes no model: its vectors are hashed word counts (384 dimensions here, the size
of Ollama's all-minilm, so Chroma stores and searches vectors of the same size as MiniLM's). Rows
3-4 therefore measure the client side of the Ollama path (llama-index's `OllamaEmbedding`, the
`ollama` client, HTTP and JSON on loopback, `RAG_EMBED_BATCH` texts per request) plus the fake's
own hashing, never GPU speed; a real Ollama adds its model time on top. Their ranking quality is
meaningless (hashed words), only their timings count. Every server shares this machine's cores
with the client, which a real scale-out would not.

Measured per configuration:
- index: chunks embedded per second over the whole `build_index` run (its own report);
- search: warm `Retriever.search(q, k=10)` (hybrid) over every gold question, after warm-up
  searches; per question the four retrievers take turns, so drifting load hits all alike.
  `search` includes embedding the question (the ONNX query cache is cleared before each question);
  `query embed` is that embedding alone (`rag.index.embedding.query_vector`); `retrieval` is the
  search with the query vectors computed beforehand (BM25, the Chroma HNSW query, the
  winners' texts read by row from the generation's local texts.sqlite).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .common import CLOSED_PORT, ROOT, machine_facts, scrub_env, summary
from .scale import questions, seed_sentences, write_corpus

REPORT = ROOT / "reports" / "bench-scaleout.md"
EMBED_MODEL = "all-minilm"
EMBED_DIM = 384  # Ollama's all-minilm is all-MiniLM-L6-v2: the same 384 dimensions as the ONNX model
CONFIGS = [  # name, Chroma server?, embed backend, label
    ("embedded-onnx", False, "onnx", "embedded Chroma + in-process ONNX (baseline)"),
    ("server-onnx", True, "onnx", "`chroma run` on loopback + ONNX"),
    ("embedded-ollama", False, "ollama", "embedded Chroma + Ollama embed (FakeOllama, loopback)"),
    ("server-ollama", True, "ollama", "`chroma run` + Ollama embed (FakeOllama), both loopback"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ChromaServer:
    """`chroma run` on a free loopback port, as `make chroma` runs it; stopped by close()."""

    def __init__(self, path: Path, log: Path):
        self.port = _free_port()
        chroma = Path(sys.executable).parent / "chroma"
        self._log = open(log, "wb")
        self.proc = subprocess.Popen([str(chroma), "run", "--path", str(path), "--host", "127.0.0.1",
                                      "--port", str(self.port)], stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v2/heartbeat", timeout=1)
                return
            except OSError:
                if self.proc.poll() is not None:
                    self.close()
                    raise RuntimeError(f"chroma run exited early ({self.proc.returncode}); see {log}")
                time.sleep(0.3)
        self.close()
        raise RuntimeError(f"chroma run did not answer within 90 s; see {log}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class FakeOllamaProcess:
    """tests/ollama_fake.FakeOllama in a child process (its hashing must not share our GIL);
    it serves until its stdin closes."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.scaleout", "--serve-fake-ollama"], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http://"):
            self.close()
            raise RuntimeError(f"FakeOllama did not start (said {line!r})")
        self.url = line

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def serve_fake_ollama() -> int:
    sys.path.insert(0, str(ROOT / "tests"))
    from ollama_fake import FakeOllama

    with FakeOllama(models=[EMBED_MODEL], embedding_dim=EMBED_DIM) as fake:
        print(fake.url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin (or dies)
    return 0


def settings_for(name: str, server: bool, backend: str, root: Path, chroma_port: int, ollama_url: str):
    from rag.settings import Settings

    return Settings(data_dir=root / f"data-{name}", seed_dir=root / "seeds", library_dir=root / "library",
                    collection=f"bench_{name.replace('-', '_')}",
                    chroma_host="127.0.0.1" if server else None, chroma_port=chroma_port,
                    embed_backend=backend, ollama_embed_model=EMBED_MODEL,
                    ollama_host=ollama_url if backend == "ollama" else CLOSED_PORT)


def index(settings) -> dict:
    from rag.index.build import build_index

    t0 = time.perf_counter()
    report = build_index(settings)
    wall = time.perf_counter() - t0
    assert report.rebuilt and report.chunks_embedded == report.chunks_total > 0, report
    if settings.chroma_host:  # the server holds the collection; only BM25/arrays/manifest are local
        assert not (settings.data_dir / "chroma").exists(), "server mode wrote an embedded store"
    return {"papers": report.papers, "chunks": report.chunks_total, "index_s": report.seconds, "wall_s": wall,
            "chunks_per_s": report.chunks_embedded / report.seconds, "reason": report.reason}


def _timed(fn, items) -> list[float]:
    out = []
    for item in items:
        t = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - t) * 1000)
    return out


def search_round(configs: list[tuple], qs: list[str], samples: list[dict]) -> None:
    """One pass over the questions; for each question every configuration takes its turn at every
    measure, so load that drifts (other people's jobs) hits the four alike."""
    from rag.index import embedding
    from rag.query import retrieval

    vectors = [{q: embedding.query_vector(settings, q) for q in qs} for settings, _ in configs]
    real = retrieval.query_vector
    for q in qs:
        for (settings, r), vecs, s in zip(configs, vectors, samples):
            embedding.minilm_query.cache_clear()  # the ONNX path caches question vectors
            s["search"] += _timed(lambda x: r.search(x, k=10), [q])
            embedding.minilm_query.cache_clear()
            s["query_embed"] += _timed(lambda x: embedding.query_vector(settings, x), [q])
            retrieval.query_vector = lambda _settings, x: vecs[x]  # vector computed beforehand
            try:
                s["retrieval"] += _timed(lambda x: r.search(x, k=10), [q])
            finally:
                retrieval.query_vector = real


def run(papers: int, rounds: int, root: Path) -> list[dict]:
    from rag.query.retrieval import Retriever

    print(f"writing {papers:,} synthetic papers…", flush=True)
    write_corpus(root / "seeds", papers, seed_sentences())
    (root / "library").mkdir()
    qs = questions()
    chroma = ollama = None
    results = []
    try:
        chroma = ChromaServer(root / "chroma-server", root / "chroma-server.log")
        ollama = FakeOllamaProcess()
        print(f"chroma run on 127.0.0.1:{chroma.port}; FakeOllama on {ollama.url}", flush=True)
        configs = [(name, label, settings_for(name, server, backend, root, chroma.port, ollama.url))
                   for name, server, backend, label in CONFIGS]
        for name, label, settings in configs:
            load = os.getloadavg()[0]
            print(f"[{name}] indexing…", flush=True)
            res = {"config": name, "label": label, "load_before": round(load, 2), **index(settings)}
            print(f"[{name}] {res['chunks']:,} chunks in {res['index_s']:.1f} s "
                  f"({res['chunks_per_s']:.0f} chunks/s)", flush=True)
            results.append(res)
        retrievers = [(s, Retriever(s)) for _, _, s in configs]
        for settings, r in retrievers:  # warm-up: model loads, connections, page cache
            for q in qs[:5]:
                r.search(q, k=10)
        samples = [{"search": [], "query_embed": [], "retrieval": []} for _ in configs]
        for i in range(rounds):
            print(f"search round {i + 1}/{rounds} (load {os.getloadavg()[0]:.2f})…", flush=True)
            search_round(retrievers, qs, samples)
        for res, s in zip(results, samples):
            res.update({f"{k}_ms": summary(v) for k, v in s.items()})
        if ollama is not None:
            results[-1]["fake_ollama_alive"] = ollama.proc.poll() is None
    finally:
        if ollama is not None:
            ollama.close()
        if chroma is not None:
            chroma.close()
    return results


def _ratio(v: float, base: float) -> str:
    return f"{v / base:.2f}×" if base else "—"


def table(results: list[dict]) -> str:
    base = results[0]
    head = ("| configuration | chunks/s (× baseline) | search p50 / p95 ms (× baseline) | query embed p50 ms "
            "| retrieval p50 / p95 ms (× baseline) |")
    lines = [head, "|---|---|---|---|---|"]
    for r in results:
        s, e, q = r["search_ms"], r["query_embed_ms"], r["retrieval_ms"]
        bs, bq = base["search_ms"], base["retrieval_ms"]
        lines.append(f"| {r['label']} | {r['chunks_per_s']:,.0f} ({_ratio(r['chunks_per_s'], base['chunks_per_s'])}) "
                     f"| {s['p50']:.1f} / {s['p95']:.1f} ({_ratio(s['p50'], bs['p50'])} / {_ratio(s['p95'], bs['p95'])}) "
                     f"| {e['p50']:.1f} "
                     f"| {q['p50']:.1f} / {q['p95']:.1f} ({_ratio(q['p50'], bq['p50'])} / {_ratio(q['p95'], bq['p95'])}) |")
    return "\n".join(lines)


def save(results: list[dict], facts: dict, seconds: float, rounds: int) -> None:
    n_q = results[0]["search_ms"]["n"] // rounds
    body = ["# Scale-out benchmark (`make bench-scaleout`)\n", f"{json.dumps(facts)}\n",
            f"Run took {seconds:.0f} s; 1-minute load average before each configuration was indexed: "
            f"{[r['load_before'] for r in results]}, after the run: {facts['loadavg_after']}. Two cores shared "
            "with other people's jobs (and, here, with the Chroma server and FakeOllama processes), so timings are "
            "noisy (±30% or worse); the ratios, taken within one run, are steadier than the absolute numbers.\n",
            f"{results[0]['papers']:,} synthetic papers (default 2,000; `--papers` sets it), {results[0]['chunks']:,} "
            f"chunks; searches: {n_q} gold "
            f"questions × {rounds} rounds per configuration, k=10, hybrid.\n",
            __doc__.split("\n\n", 1)[1], "", table(results), "",
            "Reading the table: the ONNX rows' chunks/s is MiniLM on this machine's share of two loaded cores (the "
            "server row also gives the Chroma server process a share of them); the Ollama rows' chunks/s is the ceiling "
            "the client path allows before any model time. `retrieval` isolates the store: against the server each "
            "search makes one HTTP request (the HNSW query; texts and paper fields are read from the local generation). The "
            "Ollama rows' vectors are different ones (hashed words), so their HNSW graph and `retrieval` differ a "
            "little from the ONNX rows' even on the same store.", "",
            "**Caveat: FakeOllama is not a GPU.** It answers `/api/embed` with hashed word counts and no model, so the "
            "Ollama rows show what the Ollama client path costs on its own (request building, HTTP on loopback, JSON "
            "of 384 floats per text, batching of `RAG_EMBED_BATCH` texts per request), not what a real Ollama host "
            "would deliver: a real one adds its model time per request and, across a network, the round-trip time "
            "to every search (one `/api/embed` per question) and to every batch of the index run.", "",
            "```json", json.dumps(results, indent=1), "```", ""]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(body))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.scaleout", description=__doc__.splitlines()[0])
    ap.add_argument("--papers", type=int, default=2000, help="synthetic papers in the corpus (default 2000)")
    ap.add_argument("--rounds", type=int, default=2, help="search passes over the gold questions per configuration")
    ap.add_argument("--keep", action="store_true", help="keep the temp corpus, indexes and server log")
    ap.add_argument("--serve-fake-ollama", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve_fake_ollama:
        return serve_fake_ollama()
    scrub_env()
    t0, root = time.perf_counter(), ROOT / "reports" / "tmp" / "scaleout"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    facts = machine_facts()
    try:
        results = run(args.papers, args.rounds, root)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    facts["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(table(results))
    save(results, facts, time.perf_counter() - t0, args.rounds)
    print(f"wrote {REPORT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
