"""Speed benchmarks for the RAG assistant: `python -m bench [index|retrieval|ask|all]` (`make bench`).

Sections (one module each): `index` (cold whole-corpus index, no-op re-index), `retrieval`
(in-process latency per mode), `ask` (embedded LLM and extractive answers, from process start and
in-process). Each figure is printed beside a naive baseline measured in the same run, as a ratio,
because the 2-core machines are shared and noisy; results go to reports/bench.md and bench.json.
All data lives in temp folders; the user's `.rag` is never touched.
"""
