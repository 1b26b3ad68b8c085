"""The chat page in a real browser: `python -m ui` (what `make ui` runs) in a subprocess on a
free loopback port, over the session's corpus index, driven by Debian's chromium through
Playwright. Screenshots land in reports/ui/ for a human to look at."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "reports" / "ui"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-quic", "--no-first-run", "--disable-sync"]
START_TIMEOUT = 240  # Gradio's import alone takes 7–12 s; this machine may be busy
ANSWER_TIMEOUT = 120_000  # ms
Q_BENCH = "How many multilingual benchmarks did the position paper on multilingual evaluation examine?"
Q_ASYNC = "Which paper proposes an asynchronous streaming RL framework for LLM post-training?"
Q_FOLLOW = "How much faster was its throughput than the baseline?"


def _chromium() -> str:
    """Debian's chromium (Playwright's own download fails offline); installed with apt if missing."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"]):
        try:
            done = subprocess.run(sudo + cmd, capture_output=True, text=True, timeout=1200, env=env)
        except (OSError, subprocess.TimeoutExpired) as e:
            pytest.skip(f"chromium is not installed and `{' '.join(cmd)}` could not run: {e}")
        if done.returncode:
            pytest.skip(f"chromium is not installed and `{' '.join(cmd)}` failed: {done.stderr.strip()[-400:]}")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"apt installed chromium but {CHROMIUM} is still missing")
    return CHROMIUM


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_env(settings, port: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_") and k != "OLLAMA_HOST"}
    env.update(RAG_DATA_DIR=str(settings.data_dir), RAG_SEED_DIR=str(settings.seed_dir),
               RAG_LIBRARY_DIR=str(settings.library_dir),
               RAG_OLLAMA_HOST="http://127.0.0.1:9", RAG_UI_HOST="127.0.0.1", RAG_UI_PORT=str(port),
               RAG_BACKEND="extractive", GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1",
               PYTHONUNBUFFERED="1")
    return env


def _wait_until_up(proc: subprocess.Popen, url: str, log: Path) -> None:
    """Until the page answers HTTP and the server has printed where it serves."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"`python -m ui` exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200 and f"serving on {url}" in log.read_text():
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"the page did not come up within {START_TIMEOUT} s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def ui_server(settings, log: Path):
    """`python -m ui` for `settings` on a free port, its output in `log`; yields its URL, stops it after."""
    port = _free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ui"], cwd=ROOT, env=_server_env(settings, port),
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_up(proc, url, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def server(corpus_settings, tmp_path_factory):
    """`python -m ui` on a free port over the session's index; yields its URL."""
    log = tmp_path_factory.mktemp("ui-server") / "server.log"
    with ui_server(corpus_settings, log) as url:
        assert "no public share link" in log.read_text()
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    p = context.new_page()
    p.set_default_timeout(30_000)
    p.goto(server)
    p.wait_for_selector("#rag-question textarea")
    yield p
    context.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name))


def ask(page, question: str) -> None:
    """Type and send a question; return when one more answer, abstention or error is on screen."""
    done = "#rag-chat .rag-answer, #rag-chat .rag-error"
    before = page.locator(done).count()
    page.fill("#rag-question textarea", question)
    page.click("#rag-send")
    page.wait_for_function(f"document.querySelectorAll({done!r}).length > {before}", timeout=ANSWER_TIMEOUT)
    page.wait_for_timeout(300)  # let Gradio finish painting the last update


def watch_for_streaming(page) -> None:
    """Record whether the in-progress bubble ever appears (it is replaced by the answer)."""
    page.evaluate("""() => { window.__sawWorking = false;
        new MutationObserver(() => { if (document.querySelector('#rag-chat .rag-working')) window.__sawWorking = true; })
          .observe(document.body, {subtree: true, childList: true, characterData: true}); }""")


# --- tests ---------------------------------------------------------------------------------------------

def test_answer_with_cards_and_a_citation_link_that_lands_on_its_card(page):
    watch_for_streaming(page)
    ask(page, Q_BENCH)
    assert page.evaluate("window.__sawWorking"), "the in-progress bubble was shown before the answer"
    answer = page.locator("#rag-chat .rag-answer").last
    assert "2,000" in answer.inner_text()
    cards = page.locator("#rag-chat .rag-card")
    assert cards.count() >= 1 and page.locator("#rag-chat .rag-card mark").count() >= 1
    assert "Bitter Lesson" in cards.first.inner_text()
    page.wait_for_function("""() => {  // the chat scrolls back to the answer's beginning, not its last card
        const log = document.querySelector('#rag-chat [role=log]').getBoundingClientRect();
        const top = document.querySelector('#rag-chat .rag-answer').getBoundingClientRect().top;
        return log.top <= top && top < log.top + log.height / 2; }""", timeout=10_000)
    shot(page, "answer.png")

    link = answer.locator("a.rag-cite").first
    target = link.get_attribute("href")
    assert target == "#rag-t1-src1" and link.get_attribute("target") is None, "an in-page link, no new tab"
    link.click()
    page.wait_for_function(f"location.hash === {target!r}")
    assert page.evaluate("document.querySelector(':target') && document.querySelector(':target').id") == target[1:]
    expect(page.locator(target)).to_be_in_viewport()
    shot(page, "citation.png")


def test_follow_up_shows_the_retrieval_query_and_keeps_anchors_unique(page):
    ask(page, Q_ASYNC)
    ask(page, Q_FOLLOW)
    second = page.locator("#rag-chat .rag-answer").nth(1)
    second.locator("details.rag-query summary").click()
    query = second.locator("details.rag-query code").inner_text()
    assert Q_ASYNC in query and Q_FOLLOW in query
    ids = page.evaluate("Array.from(document.querySelectorAll('#rag-chat [id^=rag-t]')).map(e => e.id)")
    assert len(ids) == len(set(ids)) and "rag-t2-src1" in ids
    hrefs = second.locator("a.rag-cite").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert hrefs and all(h.startswith("#rag-t2-src") for h in hrefs)
    shot(page, "follow-up.png")


def test_empty_question_shows_an_error_and_the_page_keeps_working(page):
    ask(page, "")
    error = page.locator("#rag-chat .rag-error").last
    assert "the question is empty" in error.inner_text()
    page.wait_for_selector(".toast-body")
    assert "the question is empty" in page.locator(".toast-body").first.inner_text()
    shot(page, "error.png")
    ask(page, Q_BENCH)
    assert page.locator("#rag-chat .rag-card").count() >= 1


def test_ollama_down_is_explained_and_another_backend_still_answers(page):
    page.locator("#rag-backend label", has_text="Ollama").click()
    ask(page, Q_BENCH)
    error = page.locator("#rag-chat .rag-error").last
    assert "ollama serve" in error.inner_text() and "Backend" in error.inner_text()
    shot(page, "ollama-down.png")
    page.locator("#rag-backend label", has_text="Extractive").click()
    ask(page, Q_BENCH)
    assert page.locator("#rag-chat .rag-card").count() >= 1


def test_markup_typed_as_a_question_is_shown_as_text_and_never_runs(page):
    question = 'Who won the 2018 FIFA World Cup? <script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
    ask(page, question)
    user = page.locator("#rag-chat .rag-question").last
    assert user.inner_text() == question
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#rag-chat script, #rag-chat img[src='x']").count() == 0
    abstained = page.locator("#rag-chat .rag-abstained")
    assert abstained.count() == 1 and "Closest papers" in abstained.inner_text()
    shot(page, "abstention.png")


def test_two_browser_sessions_do_not_share_a_conversation(browser, server):
    pages = []
    for question in (Q_ASYNC, Q_BENCH):
        p = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
        p.goto(server)
        p.wait_for_selector("#rag-question textarea")
        ask(p, question)
        pages.append(p)
    first, second = (p.locator("#rag-chat").inner_text() for p in pages)
    assert Q_ASYNC in first and Q_BENCH not in first
    assert Q_BENCH in second and Q_ASYNC not in second
    ask(pages[1], Q_FOLLOW)  # a follow-up in session 2 leans on session 2's question only
    query = pages[1].locator("#rag-chat details.rag-query code").last.evaluate("e => e.textContent")
    assert Q_BENCH in query and Q_ASYNC not in query
    for p in pages:
        p.context.close()


def test_new_conversation_forgets_the_earlier_questions(page):
    ask(page, Q_ASYNC)
    page.click("#rag-clear")
    page.wait_for_function("document.querySelectorAll('#rag-chat .rag-answer').length === 0")
    ask(page, Q_FOLLOW)  # no longer a follow-up: the session's history was reset with the chat
    query = page.locator("#rag-chat details.rag-query code").last.evaluate("e => e.textContent")
    assert query == Q_FOLLOW


def test_index_panel_shows_status_and_reindexes(page):
    status = page.locator("#rag-status")
    assert "Papers" in status.inner_text() and "Fingerprint" in status.inner_text()
    page.click("#rag-reindex")
    page.wait_for_selector(".rag-report", timeout=ANSWER_TIMEOUT)
    assert "unchanged" in page.locator(".rag-report").inner_text()
    shot(page, "index.png")
