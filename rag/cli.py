"""`python -m rag …`: a thin shell over the library. Errors become one red line and an exit code.

Exit codes: 0 ok, 1 unexpected failure, 2 bad input or settings, 3 index or store problem,
4 answering backend unavailable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from rag.errors import IndexMissingError, RagError, SettingsError

HINT_OLLAMA = ("Answered without Ollama. For stronger answers run a local Ollama "
               "(`ollama serve`, then `ollama pull {model}`); --backend auto uses it when it is reachable.")


def _settings():
    from pydantic import ValidationError

    from rag.settings import describe, get_settings

    try:
        return get_settings()
    except ValidationError as e:
        raise SettingsError(describe(e)) from None


def _filters(args):
    from rag.query.retrieval import Filters

    return Filters(date_from=args.date_from, date_to=args.date_to, org=args.org)


def _progress():
    from tqdm import tqdm

    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="embedding chunks", unit="chunk", file=sys.stderr, leave=False)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def cmd_papers(args) -> int:
    from rag.corpus.listing import load_corpus

    papers = load_corpus(_settings().seed_dir)
    if args.json:
        _print_json([p.to_dict() for p in papers])
        return 0
    for p in papers:
        who = p.org or (f"{p.authors} authors" if p.authors else "")
        print(f"{p.paper_id}  {p.date or p.date_raw or '':12}  {who[:22]:22}  {len(p.sources)}×  {p.title}")
    print(f"{len(papers)} unique papers from {len({s for p in papers for s in p.sources})} files", file=sys.stderr)
    return 0


def _run_index(rebuild: bool = False):
    from rag.index.build import build_index

    report = build_index(_settings(), rebuild=rebuild, progress=_progress())
    how = f"rebuilt ({report.reason})" if report.rebuilt else "updated in place"
    print(f"index {how}: added {report.added}, updated {report.updated}, removed {report.removed}, "
          f"unchanged {report.unchanged}; {report.chunks_embedded} chunks embedded, {report.chunks_total} in "
          f"the index; {report.seconds:.1f} s", file=sys.stderr)
    return report


def cmd_index(args) -> int:
    report = _run_index(args.rebuild)
    if args.json:
        _print_json(report.to_dict())
    return 0


def _with_index(fn):
    """Run fn; if there is no usable index yet, build it once (with a progress bar) and retry."""
    try:
        return fn()
    except IndexMissingError as e:
        print(f"{e}\nbuilding the index now (one time, ~25 s)…", file=sys.stderr)
        _run_index()
        return fn()


def cmd_search(args) -> int:
    from rag.query.retrieval import search

    hits = _with_index(lambda: search(args.question, k=args.k, filters=_filters(args), mode=args.mode,
                                      settings=_settings()))
    if args.json:
        _print_json([h.to_dict() for h in hits])
        return 0
    for rank, h in enumerate(hits, 1):
        print(f"{rank:2}. {h.score:.4f}  {h.title}  [{h.paper_id}; {h.meta.get('date_raw') or 'undated'}]")
    if not hits:
        print("no matching papers (check the filters)", file=sys.stderr)
    return 0


def _print_sources(answer) -> None:
    if answer.abstained:
        return
    print("\nSources:")
    for c in answer.citations:
        meta = " · ".join(x for x in (c.date_raw, c.org, f"{c.authors} authors" if c.authors else None) if x)
        how = " (attributed by the checker)" if c.attributed else ""
        print(f"  [{c.n}] {c.title}{' — ' + meta if meta else ''}{how}\n      “{c.evidence}”\n      files: {c.sources}")
    if answer.removed_citations:
        print(f"  removed citations to sources that do not exist: {answer.removed_citations}")


def _print_footer(answer, settings) -> None:
    t = answer.timings
    tokens = f"tokens {answer.prompt_tokens}→{answer.completion_tokens}, " if answer.prompt_tokens else ""
    print(f"\n[{answer.backend} · {answer.model} · {tokens}first token {t.get('first_token_s', 0):.2f} s, "
          f"total {t.get('total_s', 0):.2f} s]", file=sys.stderr)
    for note in answer.notes:
        print(f"  note: {note}", file=sys.stderr)
    if answer.backend != "ollama":
        print(HINT_OLLAMA.format(model=settings.ollama_model), file=sys.stderr)


def cmd_ask(args) -> int:
    from rag.answer.pipeline import ask, ask_stream

    settings = _settings()
    options = dict(history=args.history, backend=args.backend, model=args.model, k=args.k,
                   filters=_filters(args), settings=settings)
    if args.json:
        _print_json(_with_index(lambda: ask(args.question, **options)).to_dict())
        return 0
    answer = _with_index(lambda: _stream_to_terminal(ask_stream(args.question, **options)))
    _print_sources(answer)
    _print_footer(answer, settings)
    return 0


def _stream_to_terminal(events):
    streamed = ""
    for kind, payload in events:
        if kind == "token":
            streamed += payload
            print(payload, end="", flush=True)
        elif kind == "answer":
            if payload.text.strip() != streamed.strip():  # the checker changed something: show its verdicts
                print("\n\nChecked answer (✓ backed by the cited abstract, ⚠ not):")
                print(_checked_lines(payload))
            else:
                print()
            return payload
    raise RuntimeError("no answer")


def _checked_lines(answer) -> str:
    if answer.abstained:
        return answer.text
    lines = []
    for s in answer.sentences:
        marks = "".join(f"[{n}]" for n in s.cites)
        lines.append(f"  ✓ {s.text} {marks}" if s.supported else f"  ⚠ {s.text} {marks} (unsupported: {s.reason})")
    return "\n".join(lines)


def cmd_status(args) -> int:
    from rag.index.status import index_status

    st = index_status(_settings())
    if args.json:
        _print_json(st.to_dict())
    elif not st.exists:
        print(f"no index in {st.where}; build it with `python -m rag index`")
    else:
        print(f"{st.papers} papers, {st.chunks} chunks in {st.collection} at {st.where}, built {st.built_at}, "
              f"fingerprint {st.fingerprint}{' (STALE: settings changed, re-index)' if st.stale else ''}")
    return 0


def cmd_models(args) -> int:
    from rag.llm.setup import prepare

    failed = False
    for step in prepare(_settings(), verify=args.verify, probe=not args.no_probe, require_all=args.all):
        mark = "ok" if step.ok else ("FAIL" if step.required else "warn")
        print(f"  {mark:4} {step.what} ({step.seconds:.1f} s): {step.detail}", flush=True)
        failed |= step.required and not step.ok
    return 4 if failed else 0


def cmd_doctor(args) -> int:
    from rag.doctor import render, run, to_json

    rows = []
    for row in run(_settings()):
        rows.append(row)
        if not args.json:
            print(f"  {row.status:4} {row.check}", file=sys.stderr, flush=True)  # progress: some rows take seconds
    print(json.dumps(to_json(rows), indent=2) if args.json else render(rows))
    return 1 if any(r.broken for r in rows) else 0


def cmd_eval(args) -> int:
    from rag.eval.run import main as eval_main

    return eval_main(args, _settings())


def _add_filters(p) -> None:
    p.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD", help="only papers dated on/after")
    p.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD", help="only papers dated on/before")
    p.add_argument("--org", help="only papers whose organisation contains this text")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m rag", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("papers", help="list every unique paper")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_papers)
    p = sub.add_parser("index", help="build or update the index")
    p.add_argument("--rebuild", action="store_true", help="build a fresh collection, then switch to it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_index)
    p = sub.add_parser("search", help="ranked papers for a question")
    p.add_argument("question")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--mode", choices=["hybrid", "bm25", "dense"], default="hybrid")
    p.add_argument("--json", action="store_true")
    _add_filters(p)
    p.set_defaults(fn=cmd_search)
    p = sub.add_parser("ask", help="answer a question with citations")
    p.add_argument("question")
    p.add_argument("--backend", choices=["auto", "ollama", "llamacpp", "extractive"])
    p.add_argument("--model", help="Ollama model name, or a .gguf path for llamacpp")
    p.add_argument("-k", type=int, help="papers to retrieve")
    p.add_argument("--history", action="append", metavar="EARLIER_QUESTION", help="an earlier turn (repeatable)")
    p.add_argument("--json", action="store_true")
    _add_filters(p)
    p.set_defaults(fn=cmd_ask)
    p = sub.add_parser("status", help="what the index holds")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_status)
    p = sub.add_parser("models", help="assemble and verify the embedded models, then test the runtime")
    p.add_argument("--verify", action="store_true", help="re-hash files already recorded as verified")
    p.add_argument("--no-probe", action="store_true", help="skip the test generation in a child process")
    p.add_argument("--all", action="store_true", help="fail when any model (not only the configured one) is missing")
    p.set_defaults(fn=cmd_models)
    p = sub.add_parser("doctor", help="check packages, model files, a real generation, the index, Ollama, disk")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_doctor)
    p = sub.add_parser("eval", help="run a gold question file and write reports")
    p.add_argument("--gold", default="evals/gold.jsonl")
    p.add_argument("--out", default="evals/reports")
    p.add_argument("--split", choices=["dev", "test", "all"], default="all")
    p.add_argument("--backend", action="append", choices=["extractive", "llamacpp", "ollama"],
                   help="answer backends to evaluate (repeatable; default extractive)")
    p.add_argument("--no-answers", action="store_true", help="retrieval metrics only")
    p.add_argument("--gate", action="store_true", help="exit 1 when a metric is below evals/thresholds.json")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_eval)
    return ap


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach for a hub
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except RagError as e:
        print(f"\033[31merror: {e}\033[0m" if sys.stderr.isatty() else f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
