"""`hea-rag serve` in a real browser: Debian's Chromium, driven by Playwright (which downloads no
browser of its own here), against a real server process on a free loopback port."""

from __future__ import annotations

import shutil

import pytest

import serve_fixture as fixture
from hea_rag.answer import NOT_ANSWERABLE

pytestmark = pytest.mark.slow
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
WAIT_MS = 120_000  # CPU answers take a second or two, longer on a busy machine
# every change of the answer's text, as the page saw it: the stream shows as growing prefixes
RECORD_ANSWER_CHANGES = """
window.answerChanges = [];
document.addEventListener("DOMContentLoaded", () => {
  new MutationObserver(() => window.answerChanges.push(document.getElementById("answer").textContent))
    .observe(document.getElementById("answer"), {childList: true, characterData: true, subtree: true});
});
"""


@pytest.fixture(scope="module")
def chromium_path() -> str:
    """Missing Chromium is a failure, not a skip: scripts/setup.sh installs it."""
    for name in CHROMIUM_NAMES:
        if path := shutil.which(name):
            return path
    pytest.fail("no Chromium found: run scripts/setup.sh (it installs Debian's `chromium`)")


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedder):
    index_dir = fixture.build_index(tmp_path_factory.mktemp("browser"))
    process = fixture.start_server(index_dir)
    yield process
    process.stop()


@pytest.fixture
def page(chromium_path, server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
        browser = playwright.chromium.launch(executable_path=chromium_path, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.add_init_script(RECORD_ANSWER_CHANGES)
        page.set_default_timeout(WAIT_MS)
        page.goto(server.url)
        page.wait_for_selector("body[data-ready=true]")
        yield page
        browser.close()


def ask(page, question: str, mode: str = "ask") -> None:
    page.check(f"input[name=mode][value={mode}]")
    page.fill("#question", question)
    page.click("#ask-button")


def test_the_page_streams_an_answer_and_cites_its_paper(page, tmp_path):
    from playwright.sync_api import expect

    ask(page, fixture.QUESTION)
    expect(page.locator("#answer")).to_have_class("answer answered")
    expect(page.locator("#answer")).to_have_text(fixture.ANSWER)
    changes = page.evaluate("window.answerChanges")
    partial = [text for text in changes if text and len(text) < len(fixture.ANSWER)]
    assert partial and all(fixture.ANSWER.startswith(text) for text in partial), changes
    card = page.locator(f'.card[data-doi="{fixture.ANSWER_DOI}"]')
    expect(card).to_be_visible()
    expect(card.locator("a.doi")).to_have_attribute("href", f"https://doi.org/{fixture.ANSWER_DOI}")
    expect(card.locator("h3")).to_contain_text(fixture.PAPERS[0]["Title"])
    expect(card.locator("mark.evidence")).to_contain_text(f"shear strength of {fixture.ANSWER}")
    screenshot = tmp_path / "answer.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert_not_blank(screenshot)


def test_the_page_says_why_it_refuses(page):
    from playwright.sync_api import expect

    ask(page, fixture.OFF_CORPUS)
    expect(page.locator("#answer")).to_have_class("answer refused")
    expect(page.locator("#answer")).to_have_text(NOT_ANSWERABLE)
    expect(page.locator("#refusal")).to_have_text("Not answered (reason: low_score).")
    ask(page, fixture.NOT_REPORTED)
    expect(page.locator("#refusal")).to_have_text("Not answered (reason: no_match).")
    expect(page.locator("#answer")).to_contain_text("never mention the melting point")


def test_the_page_tables_answers_from_several_papers(page):
    from playwright.sync_api import expect

    page.fill("#papers", "3")
    ask(page, fixture.PAPERS_QUESTION)
    rows = page.locator("#per-paper tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator("#status")).to_contain_text("1 of 3 papers answered")
    answered = page.locator(f'#per-paper tr[data-doi="{fixture.PAPERS_DOI}"]')
    expect(answered.locator("td.answered")).to_have_text(fixture.PAPERS_ANSWER)
    expect(answered.locator("a.doi")).to_have_attribute("href", f"https://doi.org/{fixture.PAPERS_DOI}")
    expect(page.locator("#per-paper td.refused")).to_have_count(2)
    expect(page.locator("#per-paper td.refused").first).to_have_text("refused (no_match)")


def test_search_only_mode_lists_papers_without_asking(page):
    from playwright.sync_api import expect

    ask(page, "VCrFeTaW irradiation hardening", mode="search")
    expect(page.locator("#status")).to_have_text("5 papers found")
    expect(page.locator(".card").first).to_have_attribute("data-doi", "10.9997/serve.2023.003")
    expect(page.locator("#answer")).to_have_text("")


def test_an_upload_grows_the_counts_and_is_searchable(page, tmp_path):
    from playwright.sync_api import expect

    before = int(page.text_content("#paper-count"))
    papers = fixture.write_csv(tmp_path / "new papers.csv", [fixture.NEW_PAPER])
    page.set_input_files("#files", str(papers))
    page.click("#upload-button")
    expect(page.locator("#paper-count")).to_have_text(str(before + 1))
    expect(page.locator("#upload-status")).to_contain_text("Added 1 papers")
    expect(page.locator("#upload-status")).to_contain_text(f"now holds {before + 1} papers")
    ask(page, "CrMnFeCoNi TiC hot pressed composite", mode="search")
    expect(page.locator(".card").first).to_have_attribute("data-doi", fixture.NEW_PAPER["DOI"])


def test_a_refused_upload_shows_the_servers_reason(page, tmp_path):
    from playwright.sync_api import expect

    fake = tmp_path / "paper.pdf"
    fake.write_text("Title,Abstract\nnot,a pdf\n")
    page.set_input_files("#files", str(fake))
    page.click("#upload-button")
    expect(page.locator("#upload-report")).to_have_text("paper.pdf: not a PDF (no %PDF- header)")


def test_ctrl_c_stops_the_server_cleanly(tmp_path, embedder):
    index_dir = fixture.build_index(tmp_path / "stop")
    process = fixture.start_server(index_dir)
    assert process.stop() == 0
    log = "".join(process.stderr)
    assert log.rstrip().endswith("hea-rag: stopped") and "Traceback" not in log


def assert_not_blank(path) -> None:
    """A page with text on it: many distinct colours and a spread of brightness."""
    from PIL import Image, ImageStat

    image = Image.open(path).convert("L")
    assert image.width >= 1000 and image.height >= 600
    assert ImageStat.Stat(image).stddev[0] > 10
    assert len(image.getcolors(maxcolors=256 * 256) or range(257)) > 16
