"""Command line: pick sections, run them in a shared temp workspace, print and save the tables."""

from __future__ import annotations

import argparse
import os
import time

from . import ask, index, models, retrieval
from .common import Workspace, machine_facts, rag_code_hash, scrub_env
from .report import Section, load, save, text_table

SECTIONS = {"index": lambda ws, a: index.run(ws, a.reps),
            "retrieval": lambda ws, a: retrieval.run(ws),
            "ask": lambda ws, a: ask.run(ws, a.ask_reps),
            "models": lambda ws, a: models.run(ws, a.ask_reps)}


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("section", nargs="?", default="all", choices=[*SECTIONS, "all"])
    ap.add_argument("--reps", type=int, default=2, help="cold-index repetitions, ours and naive each (default 2)")
    ap.add_argument("--ask-reps", type=int, default=1, help="repetitions of each ask question (default 1)")
    return ap.parse_args(argv)


def run_section(key: str, ws: Workspace, args) -> Section:
    print(f"\n[{key}]", flush=True)
    load_before, code_before, t0 = os.getloadavg()[0], rag_code_hash(), time.perf_counter()
    section = SECTIONS[key](ws, args)
    section.facts = {"date": machine_facts()["date"], "seconds": round(time.perf_counter() - t0, 1),
                     "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
                     "rag_code": code_before}
    if rag_code_hash() != code_before:
        section.notes.append("WARNING: rag/*.py changed while this section ran; rerun it for figures "
                             "from one version of the code.")
    print(text_table(section), flush=True)
    return section


def main(argv=None) -> int:
    args = parse_args(argv)
    scrub_env()
    keys = list(SECTIONS) if args.section == "all" else [args.section]
    ws, t0, done = Workspace(), time.perf_counter(), []
    try:
        for key in keys:
            done.append(run_section(key, ws, args))
    finally:
        ws.cleanup()
        if done:
            save(load(), done, machine_facts())
    print(f"\n{len(done)} section(s) in {time.perf_counter() - t0:.0f} s; wrote reports/bench.md and bench.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
