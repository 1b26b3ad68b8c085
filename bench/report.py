"""Result tables: one row per figure, always beside its naive baseline and their ratio.

Sections are stored in reports/bench.json (raw samples included) and reports/bench.md is rendered
from that file, so running one section (`python -m bench retrieval`) refreshes that section and
keeps the others' last results, each stamped with when and under what machine load it ran.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from .common import ROOT

REPORTS = ROOT / "reports"
UNITS = {"s": "{:.2f} s", "ms": "{:.1f} ms", "count": "{:.0f}", "tokens": "{:.0f}"}


@dataclass
class Row:
    """One figure. ratio = ours / baseline: below 1 means ours is smaller (faster, fewer tokens)."""

    name: str
    ours: float
    base: float | None
    unit: str
    vs: str  # what the baseline is, in a few words
    target: float | None = None  # upper bound from GUIDE.md, same unit
    n: int = 1

    @property
    def ratio(self) -> float | None:
        return self.ours / self.base if self.base else None

    @property
    def verdict(self) -> str:
        return "" if self.target is None else ("ok" if self.ours <= self.target else "MISS")


@dataclass
class Section:
    key: str
    title: str
    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    details: list[dict] = field(default_factory=list)  # per-item rows for the markdown report
    raw: dict = field(default_factory=dict)
    facts: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _ratio(r: float | None) -> str:
    if r is None:
        return "—"
    return f"{r:.2f}×" if r >= 0.1 or r == 0 else f"{r:.2g}×"  # keep two significant digits when tiny


def cells(row: Row) -> list[str]:
    fmt = UNITS[row.unit]
    return [row.name, str(row.n), fmt.format(row.ours), "—" if row.base is None else fmt.format(row.base),
            row.vs, _ratio(row.ratio),
            "—" if row.target is None else fmt.format(row.target), row.verdict]


HEAD = ["measurement", "n", "ours", "baseline", "baseline is", "ratio", "target", "verdict"]


def text_table(section: Section) -> str:
    rows = [HEAD] + [cells(r) for r in section.rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEAD))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return f"== {section.title} ==\n" + "\n".join(lines + [f"  - {n}" for n in section.notes])


def md_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(out + ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in rows])


def load() -> dict:
    path = REPORTS / "bench.json"
    return json.loads(path.read_text()) if path.exists() else {"sections": {}}


def save(doc: dict, sections: list[Section], facts: dict) -> None:
    """Merge these sections into bench.json and re-render bench.md from it."""
    REPORTS.mkdir(exist_ok=True)
    doc["facts"] = facts
    for s in sections:
        doc["sections"][s.key] = s.to_dict()
    (REPORTS / "bench.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    from .markdown import render  # here, not at the top: markdown imports this module

    (REPORTS / "bench.md").write_text(render(doc))


def section_from_dict(d: dict) -> Section:
    return Section(**{**d, "rows": [Row(**r) for r in d["rows"]]})
