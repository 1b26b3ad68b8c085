"""The page's upload in a real browser: `python -m ui` over a small seed set and an empty
library, driven by Debian's chromium. A .bib is uploaded, the page reports the new paper,
and a question about it is answered with a source card linking its arXiv id and DOI."""

from __future__ import annotations


import pytest

from conftest import DATA
from test_ui_browser import CHROMIUM_ARGS, SHOTS, _chromium, ask, ui_server

pytestmark = pytest.mark.browser

GLACIER = "Forecasting Alpine Glacier Melt with Graph Neural Networks over Sensor Meshes"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from rag.settings import Settings
    import shutil

    from conftest import SEEDS

    root = tmp_path_factory.mktemp("upload-ui")
    seeds = root / "seeds"
    seeds.mkdir()
    shutil.copy(SEEDS / "001_e9ec3acac07436bd.txt", seeds)
    settings = Settings(seed_dir=seeds, data_dir=root / "data", library_dir=root / "library")
    with ui_server(settings, root / "server.log") as url:
        yield url, settings


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        p = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        p.set_default_timeout(60_000)
        p.goto(server[0])
        p.wait_for_selector("#rag-question textarea")
        yield p
        browser.close()


def _upload(page, *files) -> str:
    """Choose the files, press Add, return the report once the page shows a new one."""
    before = page.locator("#rag-added .rag-added").count()
    page.locator("#rag-upload input[type=file]").set_input_files([str(f) for f in files])
    page.wait_for_timeout(500)  # Gradio uploads the files before the button may use them
    page.click("#rag-add")
    page.wait_for_function(f"document.querySelectorAll('#rag-added .rag-added').length > {before} || "
                           f"(document.querySelector('#rag-added .rag-added') && {before} > 0 && "
                           f"!document.querySelector('#rag-added .pending'))", timeout=120_000)
    page.wait_for_timeout(300)
    return page.locator("#rag-added").inner_text()


def test_upload_a_bib_then_ask_about_it(page, server):
    page.click("#rag-library button.label-wrap, #rag-library >> text=Add your papers")
    report = _upload(page, DATA / "library" / "refs.bib", DATA / "library" / "latin1.csv")
    assert "refs.bib: added" in report and GLACIER in report and "2 new, 1 merged" in report
    assert "latin1.csv: rejected" in report and "not UTF-8" in report
    assert "Index updated in place: added 2" in report
    assert (server[1].library_dir / "refs.bib").exists() and not (server[1].library_dir / "latin1.csv").exists()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#rag-library").screenshot(path=str(SHOTS / "upload.png"))

    ask(page, "How much did the graph neural network reduce the error of glacier melt forecasts?")
    card = page.locator("#rag-chat .rag-card").first
    assert GLACIER in card.inner_text() and "library/refs.bib" in card.inner_text()
    links = card.locator("a.rag-link").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert "https://arxiv.org/abs/2403.01117" in links and "https://doi.org/10.5555/jcml.2024.0117" in links
    card.scroll_into_view_if_needed()
    card.screenshot(path=str(SHOTS / "upload-card.png"))
