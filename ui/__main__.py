"""`python -m ui` (what `make ui` runs): make sure an index exists, then serve the chat page.

The index is built here, before Gradio is imported, so a fresh machine prints progress within
a second instead of after Gradio's 7–12 s import. The page binds to RAG_UI_HOST/RAG_UI_PORT
(127.0.0.1:7860 by default) and never opens a public share link.
"""

from __future__ import annotations

import argparse
import os
import sys

from rag.stdio import reopen_closed

reopen_closed()  # a page started with `>&-` must not write its log into the first file it opens

for _key, _value in (("GRADIO_ANALYTICS_ENABLED", "False"), ("HF_HUB_OFFLINE", "1"), ("ANONYMIZED_TELEMETRY", "False")):
    os.environ.setdefault(_key, _value)  # before any import that reads them: nothing may phone home


def _printer(out):
    """A build_index progress callback that prints one line per batch (works in any log)."""
    def progress(done: int, total: int) -> None:
        print(f"  embedding chunks {done}/{total}", file=out, flush=True)

    return progress


def ensure_index(settings, out=sys.stderr):
    """Build the index when it is missing or was built with other settings; else just report it.
    Returns the IndexReport of a build, or None when nothing had to be built."""
    from rag.index.build import build_index
    from rag.index.status import index_status

    st = index_status(settings)
    if st.exists and not st.stale:
        print(f"index: {st.papers} papers, {st.chunks} chunks, built {st.built_at} ({st.where})", file=out)
        return None
    why = "was built with other settings" if st.exists else "does not exist yet"
    print(f"the index in {st.where} {why}: building it now (one time, about a minute)…", file=out, flush=True)
    report = build_index(settings, progress=_printer(out))
    print(f"index ready: {report.papers} papers, {report.chunks_total} chunks in {report.seconds:.1f} s", file=out)
    return report


def _settings(argv):
    from rag.settings import get_settings

    ap = argparse.ArgumentParser(prog="python -m ui", description="Serve the Paper RAG chat page.")
    ap.add_argument("--host", help="bind address (default: RAG_UI_HOST or 127.0.0.1)")
    ap.add_argument("--port", type=int, help="port (default: RAG_UI_PORT or 7860)")
    args = ap.parse_args(argv)
    return get_settings().with_overrides(ui_host=args.host, ui_port=args.port)


def main(argv: list[str] | None = None) -> int:
    """Exit 2 on a bad setting (nothing to serve with); any index or store problem is printed and
    the page starts anyway: it shows the error and its Re-index button can repair the store."""
    from rag.errors import RagError, SettingsError

    try:
        settings = _settings(argv)
    except RagError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    try:
        ensure_index(settings)
    except SettingsError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except RagError as e:
        print(f"error: {e}\nstarting the page anyway: it shows this error; tick 'Rebuild from scratch' and press "
              "Re-index to repair the index", file=sys.stderr, flush=True)
    print("starting the page (importing Gradio takes ~10 s)…", file=sys.stderr, flush=True)
    from .app import build_demo, launch

    demo = build_demo(settings)
    try:
        launch(demo, settings)
    except RagError as e:  # the port is taken: one line, not Gradio's traceback
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    demo.block_thread()  # until Ctrl-C
    return 0


if __name__ == "__main__":
    sys.exit(main())
