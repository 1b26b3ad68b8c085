"""`python -m rag …`: a thin shell over the library. Errors become one red line and an exit code.

Exit codes (every command):
  0    ok
  1    unexpected failure (a bug: one line; `--debug` shows the traceback)
  2    bad input or settings (a question, an option, a RAG_* variable; argparse usage errors too)
  3    index or store problem (no index, a corrupted or read-only store, an unreachable Chroma server)
  4    answering backend unavailable or failed (Ollama, the embedded model)
  130  interrupted (Ctrl-C)
  141  the reader of our output went away (`… | head -1`); nothing is printed
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys

from rag.errors import IndexMissingError, RagError

HINT_OLLAMA = ("Answered without Ollama. For stronger answers run a local Ollama "
               "(`ollama serve`, then `ollama pull {model}`); --backend auto uses it when it is reachable.")


def _settings():
    from rag.settings import get_settings

    return get_settings()  # a bad RAG_* value raises SettingsError: one line, exit 2


def _one_question_settings():
    """Settings of a command that answers one question and exits (`ask`, `search`): with
    RAG_DENSE_SEARCH=auto its dense search scans the stored vectors rather than load the embedded
    store's whole HNSW graph for a single query (1.1-1.3 s at 100k papers, the scan 50-150 ms).
    A Chroma server keeps its graph loaded: there a query costs milliseconds, a scan grows with the corpus."""
    settings = _settings()
    if settings.dense_search == "auto" and not settings.chroma_host:
        return settings.with_overrides(dense_search="exact")
    return settings


def _filters(args):
    from rag.query.dates import date_range
    from rag.query.retrieval import Filters

    start, end = date_range(args.date_from, args.date_to)
    return Filters(date_from=start, date_to=end, org=args.org or None)


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
    from rag.corpus.library import load_report, select

    corpus = load_report(_settings())
    papers = select(corpus.papers, args.source) if args.source else corpus.papers
    for line in corpus.conflicts + [str(b) + " (left out)" for b in corpus.bad]:
        print(f"warning: {line}", file=sys.stderr)
    if args.json:
        _print_json([p.to_dict() for p in papers])
        return 0
    for p in papers:
        who = p.org or (f"{p.authors} authors" if p.authors else "")
        print(f"{p.paper_id}  {p.date or p.date_raw or '':12}  {who[:22]:22}  {len(p.sources)}×  {p.title}")
    print(f"{len(papers)} unique papers from {len({s for p in papers for s in p.sources})} files", file=sys.stderr)
    return 0


def _print_added(report) -> None:
    for f in report.files:
        if f.status == "rejected":
            print(f"{f.file}: REJECTED, nothing added — {f.reason}")
        elif f.status == "unchanged":
            print(f"{f.file}: {f.reason}" + (f"; restored {len(f.restored)} removed papers" if f.restored else ""))
        else:
            print(f"{f.file}: {f.status} as {f.stored_as} — {f.papers} papers: {len(f.new)} new, "
                  f"{len(f.merged)} duplicates merged with papers already known"
                  + (f", {len(f.restored)} restored" if f.restored else "")
                  + (f", {len(f.bad)} bad entries left out (--skip-bad)" if f.bad else ""))
        for label, lines in (("conflict", f.conflicts), ("bad entry", f.bad), ("note", f.notes)):
            for line in lines:
                print(f"  {label}: {line}")


def cmd_add(args) -> int:
    from rag.corpus.manage import add_files

    report = add_files(args.paths, _settings(), skip_bad=args.skip_bad)
    if not args.json:
        _print_added(report)
        sys.stdout.flush()  # the per-file report before the index's progress
    indexed = _index_after("the files are in the library") if report.to_index and not args.no_index else None
    if args.json:
        _print_json({**report.to_dict(), "index": indexed.to_dict() if indexed else None})
    return 2 if report.rejected else 0


def cmd_remove(args) -> int:
    from rag.corpus.manage import remove_paper

    result = remove_paper(args.id, _settings())
    print(f"removed {result.title!r} ({result.paper_id}), listed in {', '.join(result.files)}")
    for f in result.deleted:
        print(f"  deleted {f}: none of its papers is left")
    if not args.no_index:
        _index_after(f"{result.paper_id} is out of the library")
    return 0


def _index_after(done: str):
    """The index step of add/remove. Refused because another run holds the index, the library
    change stands: running add/remove again would find nothing to do, only `index` catches up."""
    from rag.index.lock import IndexBusyError

    try:
        return _run_index()
    except IndexBusyError as e:
        raise IndexBusyError(f"{done}, but the index is not updated yet: {e.args[0].split(';')[0]}; when it "
                             "finishes, run `python -m rag index`") from None


def _run_index(rebuild: bool = False):
    from rag.index import store
    from rag.index.build import build_index

    settings = _settings()
    moved = store.recover(settings) if rebuild else None  # a corrupted store is moved aside, never deleted
    if moved:
        print(f"note: {moved}", file=sys.stderr)
    report = build_index(settings, rebuild=rebuild, progress=_progress())
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
    from rag.query.questions import check_question
    from rag.query.retrieval import search

    question = check_question(args.question)  # before the index opens: a bad question costs nothing
    hits = _with_index(lambda: search(question, k=args.k, filters=_filters(args), mode=args.mode,
                                      settings=_one_question_settings()))
    if args.json:
        _print_json([h.to_dict() for h in hits])
        return 0
    for rank, h in enumerate(hits, 1):
        print(f"{rank:2}. {h.score:.4f}  {h.title}  [{h.paper_id}; {h.meta.get('date_raw') or 'undated'}]")
    if not hits:
        why = "no paper matches the filters; widen or remove them" if _filters(args).active() else \
            "no paper shares a word with the question" if args.mode == "bm25" else "the index holds no papers"
        print(f"no matching papers: {why}", file=sys.stderr)
    return 0


def _print_sources(prep) -> None:
    """Evidence first: the sources and their best sentence, as soon as retrieval is done."""
    took = prep.timings.get("sources_s", 0.0)
    print(f"Sources ({len(prep.sources)} found in {took:.2f} s):")
    brief = prep.settings.backend == "extractive"  # the answer below quotes them anyway
    for s in prep.sources:
        m = s.hit.meta
        meta = " · ".join(x for x in (m.get("date_raw"), m.get("org"), f"{m['authors']} authors"
                                      if m.get("authors") else None) if x)
        quote = "" if brief else f"\n      “{s.best_sentence}”"
        print(f"  [{s.n}] {s.hit.title}{' — ' + meta if meta else ''}{quote}\n      files: {m.get('sources', '')}")
        links = _links(m)
        if links:
            print(f"      {links}")
    sys.stdout.flush()


def _links(meta: dict) -> str:
    """arXiv / DOI / URL of a paper when its source file gave them."""
    arxiv, doi, url = meta.get("arxiv_id"), meta.get("doi"), meta.get("url")
    parts = [f"arXiv:{arxiv} https://arxiv.org/abs/{arxiv}" if arxiv else None,
             f"doi:{doi} https://doi.org/{doi}" if doi else None,
             url if url and not (arxiv and "arxiv.org" in url) else None]
    return " · ".join(p for p in parts if p)


def _print_footer(answer, settings) -> None:
    t = answer.timings
    tokens = f"tokens {answer.prompt_tokens}→{answer.completion_tokens}, " if answer.prompt_tokens else ""
    print(f"\n[{answer.backend} · {answer.model} · {tokens}sources {t.get('sources_s', 0):.2f} s, "
          f"first token {t.get('first_token_s', 0):.2f} s, total {t.get('total_s', 0):.2f} s]", file=sys.stderr)
    for note in answer.notes:
        print(f"  note: {note}", file=sys.stderr)
    if answer.backend != "ollama":
        print(HINT_OLLAMA.format(model=settings.ollama_model), file=sys.stderr)


def cmd_ask(args) -> int:
    from rag.answer.pipeline import ask, ask_stream

    settings = _one_question_settings()
    options = dict(history=args.history, backend=args.backend, model=args.model, k=args.k,
                   filters=_filters(args), settings=settings)
    if args.json:
        _print_json(_with_index(lambda: ask(args.question, overlap=True, **options)).to_dict())
        return 0
    answer = _with_index(lambda: _stream_to_terminal(ask_stream(args.question, overlap=True, **options)))
    _print_footer(answer, settings)
    return 0


def _stream_to_terminal(events):
    """Sources first, then the model's draft as it streams, then the checked answer."""
    prep, drafting = None, False
    for kind, payload in events:
        if kind == "prepared":
            prep = payload
            _print_sources(prep)
        elif kind == "token" and prep is not None and prep.backend is not None:
            if not drafting:
                print(f"\nDraft ({prep.backend.model}, checked when it is done):")
                drafting = True
            print(payload, end="", flush=True)
        elif kind == "answer":
            _print_answer(payload, drafting)
            return payload
    raise RuntimeError("no answer")


def _print_answer(answer, drafted: bool) -> None:
    head = "Answer" if answer.abstained else "Answer (each line checked against the abstract it cites):"
    print(("\n\n" if drafted else "\n") + head)
    print(answer.text)
    if answer.unverified:
        print("\nNot backed by the cited abstracts, so set apart:")
        for s in answer.unverified:
            marks = "".join(f"[{n}]" for n in s.cites)
            print(f"  ⚠ {s.text} {marks} ({s.reason})")
    if answer.removed_citations:
        print(f"  removed citations to sources that do not exist: {answer.removed_citations}")


def cmd_status(args) -> int:
    from rag.index.status import index_status
    from rag.index.store import IndexStaleError

    st = index_status(_settings())
    if args.json:
        _print_json(st.to_dict())
    elif not st.exists:
        print(f"no index in {st.where}; build it with `python -m rag index`")
    else:
        print(f"{st.papers} papers, {st.chunks} chunks in {st.collection} at {st.where}, built {st.built_at}, "
              f"fingerprint {st.fingerprint}")
        if st.stale:
            print(f"STALE: built with other settings ({st.changed or 'fingerprint now ' + st.current_fingerprint}); "
                  "set them back to use it, or re-index with `python -m rag index`")
    if st.problem:  # searches fail until an index run repairs it: a script checking status must see that
        raise IndexStaleError(f"{st.problem}; repair it with `python -m rag index`")
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


def _positive(text: str) -> int:
    """argparse type for -k: a whole number ≥ 1 (argparse makes the error a usage line, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number ≥ 1, not {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m rag", description=__doc__.splitlines()[0],
                                 epilog=__doc__.split("\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("papers", help="list every unique paper")
    p.add_argument("--source", metavar="seeds|library|FILE", help="only papers from the seed pages, the "
                   "library, or one file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_papers)
    p = sub.add_parser("add", help="add your own papers (.bib .xml/.atom .jsonl .csv .txt) to the library, "
                       "then re-index")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--skip-bad", action="store_true", help="add a file without its bad entries "
                   "(default: a file with any bad entry is rejected whole)")
    p.add_argument("--no-index", action="store_true", help="only copy into the library; index later")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_add)
    p = sub.add_parser("remove", help="remove a paper you added (by paper id, arXiv id or DOI), then re-index")
    p.add_argument("id", metavar="ID")
    p.add_argument("--no-index", action="store_true", help="only update the library; index later")
    p.set_defaults(fn=cmd_remove)
    p = sub.add_parser("index", help="build or update the index")
    p.add_argument("--rebuild", action="store_true", help="build a fresh collection, then switch to it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_index)
    p = sub.add_parser("search", help="ranked papers for a question")
    p.add_argument("question")
    p.add_argument("-k", type=_positive, default=10, help="papers to return (≥ 1)")
    p.add_argument("--mode", choices=["hybrid", "bm25", "dense"], default="hybrid")
    p.add_argument("--json", action="store_true")
    _add_filters(p)
    p.set_defaults(fn=cmd_search)
    p = sub.add_parser("ask", help="answer a question with citations")
    p.add_argument("question")
    p.add_argument("--backend", choices=["auto", "ollama", "llamacpp", "extractive"])
    p.add_argument("--model", help="Ollama model name, or a .gguf path for llamacpp")
    p.add_argument("-k", type=_positive, help="papers to retrieve (1-50)")
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
    p.add_argument("--backend", action="append", metavar="BACKEND[:MODEL]",
                   help="answer backends to evaluate: extractive, llamacpp or ollama, optionally naming the model "
                        "(llamacpp:qwen2.5-coder-0.5b); repeatable; default extractive")
    p.add_argument("--no-answers", action="store_true", help="retrieval metrics only")
    p.add_argument("--gate", action="store_true", help="exit 1 when a metric is below evals/thresholds.json")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_eval)
    return ap


def _say(message: str) -> None:
    try:
        print(f"\033[31merror: {message}\033[0m" if sys.stderr.isatty() else f"error: {message}", file=sys.stderr)
    except (OSError, ValueError):  # stderr itself is gone: the exit code still tells
        pass


def _decode_argv(argv: list[str]) -> list[str]:
    """Arguments as text. Bytes that are not valid in the locale's encoding reach Python as lone
    surrogates; the tokenizers fail on those with a TypeError, so name them here instead."""
    from rag.errors import InputError

    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError as e:
            raw = os.fsencode(arg)[e.start:e.start + 4]
            raise InputError(f"argument {arg[:40].encode('utf-8', 'backslashreplace').decode()!r} is not valid "
                             f"UTF-8 (bytes {raw!r}); use a UTF-8 terminal (e.g. LANG=C.UTF-8) or re-type it") from None
    return argv


def _store_failure(e: BaseException) -> RagError | None:
    """chromadb failing after the store opened (a damaged collection, a server gone silent)."""
    if "chromadb" not in sys.modules:
        return None
    from rag.index import store_health

    if not store_health.from_chroma(e):
        return None
    from rag.settings import get_settings

    try:
        return store_health.explain(e, get_settings())
    except RagError as bad:
        return bad


def _stdout_gone() -> int:
    """The reader closed the pipe (`| head -1`): stop quietly. Point stdout at /dev/null so the
    interpreter's final flush does not print a second BrokenPipeError."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach for a hub
    debug = False
    try:
        args = parser().parse_args(_decode_argv(sys.argv[1:] if argv is None else list(argv)))
        debug = args.debug
        return args.fn(args)
    except RagError as e:
        _say(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except BrokenPipeError:
        return _stdout_gone()
    except BaseException as e:  # noqa: BLE001 - the CLI edge: one line, never a traceback by default
        if isinstance(e, (SystemExit, GeneratorExit)):  # argparse's usage errors exit 2 on their own
            raise
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            _say(f"no space left to write {e.filename or 'the output'} ({e.strerror}); free some space, or "
                 "send the output elsewhere")
            _stdout_gone()  # the interpreter's last flush of stdout would fail again
            return 3
        mapped = _store_failure(e)  # also chromadb's Rust panics, which are not Exceptions
        if mapped is not None:
            _say(str(mapped))
            return mapped.exit_code
        return _unexpected(e, debug)


def _unexpected(e: BaseException, debug: bool) -> int:
    if debug:
        import traceback

        traceback.print_exc()
    first = (str(e).strip().splitlines() or [""])[0][:300]
    _say(f"unexpected {type(e).__name__}: {first} — this is a bug; rerun with --debug for the traceback")
    return 1
