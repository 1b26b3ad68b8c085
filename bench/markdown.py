"""reports/bench.md, rendered from reports/bench.json (never edited by hand)."""

from __future__ import annotations

from .report import HEAD, cells, md_table, section_from_dict

ORDER = ("index", "retrieval", "ask", "models")
INTRO = """# Speed benchmarks

Produced by `make bench` (`python -m bench [index|retrieval|ask|models|all]`); raw samples are in
`reports/bench.json`. The machines are 2-core and shared, so absolute seconds drift from run to
run: every figure stands beside a naive baseline measured in the same run, and the **ratio**
(ours / baseline; below 1 = ours is faster or smaller) is the number to compare across runs.
Targets are the ones in GUIDE.md ("Speed targets"). `n` is the number of samples; figures are
medians unless the row names a percentile (p50/p95 over the n samples).

Other people's jobs share these cores: each section records the 1-minute load average before and
after it. ONNX Runtime and llama.cpp both start one thread per core, so a competing CPU-heavy process
slows them far more than its share (see the notes); read absolute figures with the load in mind.
"""


def _facts(facts: dict) -> str:
    keys = ("date", "cpu_count", "python", "platform", "loadavg_1_5_15")
    return "\n".join(f"- {k}: {facts.get(k)}" for k in keys)


def _section(d: dict) -> str:
    s = section_from_dict(d)
    parts = [f"## {s.title}", f"_measured {s.facts.get('date')}, load average before/after "
             f"{s.facts.get('load_before')} / {s.facts.get('load_after')}, section took "
             f"{s.facts.get('seconds', 0):.0f} s, rag/ code {s.facts.get('rag_code', '?')}_", md_table(HEAD, [cells(r) for r in s.rows])]
    if s.notes:
        parts.append("\n".join(f"- {n}" for n in s.notes))
    if s.details:
        header = list(s.details[0])
        parts.append(md_table(header, [[_fmt(row.get(h)) for h in header] for row in s.details]))
    return "\n\n".join(parts)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return "—" if value is None else str(value)


def render(doc: dict) -> str:
    sections = [_section(doc["sections"][k]) for k in ORDER if k in doc["sections"]]
    return "\n\n".join([INTRO, "## Machine (last run)\n\n" + _facts(doc.get("facts", {}))] + sections) + "\n"
