"""PDF papers: the real shared PDFs, typeset HEA papers with real subscripts, broken files,
dedup with a CSV row, --full-text pages, and the CLI end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hea_rag.cli import cli
from hea_rag.ingest import Failed, Paper, read_path
from hea_rag.ingest.clean import clean_abstract
from hea_rag.ingest.pdf_text import fix_symbols, join_lines, rejoin_formulas
from hea_rag.lexical import tokenize

sys.path.insert(0, str(Path(__file__).parent))
from pdf_typeset import (  # noqa: E402
    TypesetPaper,
    filler_body,
    html_named_pdf,
    image_only_pdf,
    truncated_copy,
    typeset,
)

ABSTRACT = (
    "An Al0.3CoCrFeNi alloy and a (FeCoNi)86Al7Ti7 alloy were cold rolled by 70 % and annealed "
    "at 900 °C for 1 h. Grains of 5.2 µm raised the yield strength to 650 MPa, while the "
    "Ti40Nb15Mo30(NbC)15 composite kept an elongation of 35 % and AlCoCrFeNi2.1 reached 1050 MPa."
)
HEA = TypesetPaper("Grain refinement of Al0.3CoCrFeNi and (FeCoNi)86Al7Ti7", ABSTRACT,
                   "10.9999/pdf.2023.002", authors=["Ada Writer", "Ben Reader"], year=2023,
                   body=filler_body("The Al0.3CoCrFeNi ingots were arc melted under argon."),
                   references=["[1] C. Cited, Intermetallics 120 (2020) 106000, "
                               "https://doi.org/10.1016/j.intermet.2020.106000"])
FORMULAS = ["Al0.3CoCrFeNi", "(FeCoNi)86Al7Ti7", "Ti40Nb15Mo30(NbC)15", "AlCoCrFeNi2.1"]


def _only(records) -> Paper | Failed:
    records = list(records)
    assert len(records) == 1, records
    return records[0]


def _sys_key(text: str) -> set[str]:
    return {t for t in tokenize(text) if t.startswith(("sys_", "cmp_"))}


@pytest.fixture(scope="module")
def real_pdfs(shared_dir):
    folder = shared_dir / "data" / "real_world" / "pdfs"
    return folder, json.loads((folder / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module", params=[("journal", False), ("preprint", False), ("preprint", True)],
                ids=["journal-2col", "preprint", "preprint-cover"])
def typeset_pdf(request, tmp_path_factory):
    layout, cover = request.param
    return typeset(tmp_path_factory.mktemp("pdf") / f"{layout}.pdf", HEA, layout, cover), cover


# --- the real shared PDFs --------------------------------------------------------------------


def test_real_pdfs_doi_abstract_start_and_title(real_pdfs):
    folder, expected = real_pdfs
    titles = 0
    for item in expected:
        paper = _only(read_path(str(folder / item["file"])))
        assert isinstance(paper, Paper), paper
        assert paper.doi == item["doi_printed"].lower(), item["file"]
        assert paper.abstract.startswith(item["abstract_starts"]), (item["file"], paper.abstract[:120])
        assert paper.origin == str(folder / item["file"])
        titles += paper.title == item["title"]
    assert titles >= 3


def test_real_pdf_abstract_ends_before_the_body(real_pdfs):
    folder, _ = real_pdfs
    paper = _only(read_path(str(folder / "hindawi_2010_157939_heart_failure_ccby.pdf")))
    assert paper.abstract.endswith("confidence in disease self-management.")
    assert "Introduction" not in paper.abstract
    assert paper.year == 2010
    assert paper.authors.split("; ")[0] == "Nuala E. Tully"


def test_line_end_hyphens_of_a_real_pdf_are_rejoined(real_pdfs):
    folder, _ = real_pdfs
    paper = _only(read_path(str(folder / "plosone_2018_0197919_wheat_metabolomics_ccby.pdf")))
    assert "biochemical processes involved" in paper.abstract  # printed "pro-" / "cesses"
    assert "(35:28 ± 0.08°C)" in paper.abstract  # printed with a ring above: ˚C


def test_a_folder_of_pdfs_is_read_recursively(real_pdfs, tmp_path):
    folder, expected = real_pdfs
    papers = [r for r in read_path(str(folder)) if isinstance(r, Paper)]
    assert sorted(p.doi for p in papers) == sorted(e["doi_printed"].lower() for e in expected)


# --- typeset HEA papers: formulas survive ----------------------------------------------------


def test_typeset_paper_fields(typeset_pdf):
    path, cover = typeset_pdf
    paper = _only(read_path(str(path)))
    assert paper.title == HEA.title
    assert paper.doi == HEA.doi  # not the reference's DOI, not the metadata title "5"
    assert paper.year == 2023
    assert paper.abstract == clean_abstract(ABSTRACT)
    assert paper.authors == "Ada Writer; Ben Reader"


def test_typeset_formulas_tokenize_as_typed(typeset_pdf):
    path, _ = typeset_pdf
    paper = _only(read_path(str(path)))
    for formula in FORMULAS:
        assert formula in paper.abstract
        assert _sys_key(formula) <= _sys_key(paper.abstract), formula


def test_superscripts_keep_their_caret(tmp_path):
    paper = TypesetPaper("Fatigue of CoCrFeMnNi", "", "10.9999/fake.sup")
    path = tmp_path / "sup.pdf"
    from reportlab.platypus import Paragraph, SimpleDocTemplate
    from reportlab.lib.styles import getSampleStyleSheet

    styles = getSampleStyleSheet()
    SimpleDocTemplate(str(path)).build([
        Paragraph(paper.title, styles["Title"]),
        Paragraph(f"doi: {paper.doi}", styles["Normal"]),
        Paragraph("Abstract", styles["Heading2"]),
        Paragraph("The CoCrFeMnNi alloy survived 10<super>7</super> cycles at a strain rate of "
                  "10<super>-3</super> s<super>-1</super>; its density was 8.0 g/cm<super>3</super>.",
                  styles["Normal"])])
    abstract = _only(read_path(str(path))).abstract
    assert "10^7 cycles" in abstract and "10^-3 s-1" in abstract and "g/cm3" in abstract


@pytest.mark.parametrize("printed, typed", [
    ("An Al 0.3 CoCrFeNi alloy", "An Al0.3CoCrFeNi alloy"),
    ("(FeCoNi) 86 Al 7 Ti 7 alloys", "(FeCoNi)86Al7Ti7 alloys"),
    ("In 2019 Co was added", "In 2019 Co was added"),
    ("the CoCrFeNi 50 nm films", "the CoCrFeNi 50 nm films"),
    ("Fig 3 shows", "Fig 3 shows"),
])
def test_spaced_formulas_are_rejoined_and_nothing_else(printed, typed):
    assert rejoin_formulas(printed) == typed


def test_subscript_on_its_own_line_and_hyphenation():
    vocabulary = {"high-entropy"}
    lines = ["the proper-", "ties of high-", "entropy alloys, an Al", "0.3", "CoCrFeNi plate"]
    assert join_lines(lines, vocabulary) == "the properties of high-entropy alloys, an Al0.3CoCrFeNi plate"


def test_symbols_as_typed():
    assert fix_symbols("ﬁne grains at −196 ◦C and 900 ˚C, 5 µ m") == "fine grains at -196 °C and 900 °C, 5 μm"


# --- broken files: one Failed record each, saying why -----------------------------------------


def test_broken_pdfs_fail_with_a_reason_and_indexing_goes_on(tmp_path, real_pdfs):
    folder, _ = real_pdfs
    papers = tmp_path / "papers"
    papers.mkdir()
    image_only_pdf(papers / "scan.pdf")
    typeset(papers / "locked.pdf", HEA, encrypt="secret")
    truncated_copy(folder / "hindawi_2010_157939_heart_failure_ccby.pdf", papers / "cut.pdf", keep=0.02)
    html_named_pdf(papers / "page.pdf")
    typeset(papers / "good.pdf", HEA)
    records = list(read_path(str(papers)))
    reasons = {Path(r.where).name: r.reason for r in records if isinstance(r, Failed)}
    assert "OCR it first" in reasons["scan.pdf"]
    assert "encrypted" in reasons["locked.pdf"]
    assert "damaged or truncated" in reasons["cut.pdf"]
    assert "HTML" in reasons["page.pdf"]
    assert [r.doi for r in records if isinstance(r, Paper)] == [HEA.doi]


# --- indexing: dedup with CSV, full text, CLI ---------------------------------------------------


def test_pdf_and_csv_row_with_the_same_doi_are_one_paper(tmp_path, csv_writer):
    from hea_rag.indexer import index_paths

    pdf = typeset(tmp_path / "paper.pdf", HEA)
    csv_path = csv_writer(tmp_path / "rows.csv", [{"Title": "CSV copy", "DOI": HEA.doi.upper(),
                                                   "Abstract": "The CSV version of the abstract."}])
    summary = index_paths([str(pdf), str(csv_path)], tmp_path / "index")
    assert (summary.added, summary.duplicates, summary.papers_total) == (1, 1, 1)


def test_full_text_passages_know_their_page(tmp_path):
    from hea_rag.indexer import index_paths, rebuild_index
    from hea_rag.store import IndexReader

    pdf = typeset(tmp_path / "paper.pdf", HEA, "journal")
    abstract_only = index_paths([str(pdf)], tmp_path / "plain")
    folder = tmp_path / "full"
    summary = index_paths([str(pdf)], folder, full_text=True)
    assert summary.passages > abstract_only.passages
    with IndexReader(folder) as reader:
        ids = [pid for group in reader.passage_ids_of([1]).values() for pid in group]
        pages = reader.pages_of(ids)
        texts = {pid: text for pid, (_, text) in reader.passages(ids).items()}
    assert set(pages.values()) == {1, 2}  # the body starts under the abstract, goes on on page 2
    assert ids[0] not in pages  # the abstract's passage has no page
    assert any("arc melted under argon" in texts[pid] for pid in pages)
    assert not any("10.1016/j.intermet" in texts[pid] for pid in pages)  # references dropped
    rebuilt = rebuild_index([], folder)
    assert rebuilt.passages == summary.passages  # --rebuild keeps the body


def test_cli_index_pdf_then_search_shows_the_file(tmp_path, index_env):
    pdf = typeset(tmp_path / "hea paper.pdf", HEA)
    runner = CliRunner()
    result = runner.invoke(cli, ["index", str(pdf), "--full-text"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["search", "Al0.3CoCrFeNi yield strength", "--json"])
    assert result.exit_code == 0, result.output
    hit = json.loads(result.output.splitlines()[0])
    assert (hit["doi"], hit["file"], hit["page"]) == (HEA.doi, str(pdf), None)
    result = runner.invoke(cli, ["search", "twin-jet polishing electron microscopy"])
    assert str(pdf) in result.output and "(page " in result.output


def test_cli_index_reports_broken_pdf_and_keeps_the_good_one(tmp_path):
    good = typeset(tmp_path / "good.pdf", HEA)
    bad = html_named_pdf(tmp_path / "bad.pdf")
    result = CliRunner().invoke(cli, ["index", str(good), str(bad)])
    assert result.exit_code == 1
    assert f"failed {bad}: not a PDF but an HTML page" in result.output
    assert "added 1 papers" in result.output


@pytest.mark.slow
def test_cli_ask_answers_from_a_pdf_as_a_subprocess(tmp_path, index_env):
    pdf = typeset(tmp_path / "paper.pdf", HEA)
    run = lambda *args: subprocess.run([sys.executable, "-m", "hea_rag", *args],  # noqa: E731
                                       capture_output=True, text=True, timeout=600)
    indexed = run("index", str(pdf))
    assert indexed.returncode == 0, indexed.stderr
    asked = run("ask", "What is the yield strength of Al0.3CoCrFeNi?", "--model", "smollm2-135m", "--json")
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout.splitlines()[0])
    assert answer["sources"][0]["doi"] == HEA.doi
    assert answer["sources"][0]["file"] == str(pdf)


def test_an_index_from_before_pages_still_opens_and_grows(tmp_path, corpus_csv):
    """Indexes written before passage pages existed have no passage_pages table."""
    import sqlite3

    from hea_rag.indexer import index_paths
    from hea_rag.retrieve import open_retriever
    from hea_rag.store import SQLITE_FILE, IndexReader, Manifest

    folder = tmp_path / "old"
    index_paths([str(corpus_csv)], folder)
    database = folder / Manifest.load(folder).generation / SQLITE_FILE
    with sqlite3.connect(database) as db:
        db.execute("DROP TABLE passage_pages")
    with open_retriever(folder, need_dense=False) as retriever:
        assert retriever.search("MoNbVTa0.5Cr", mode="lexical")[0].page is None
    pdf = typeset(tmp_path / "paper.pdf", HEA)
    summary = index_paths([str(pdf)], folder, full_text=True)
    assert summary.added == 1
    with IndexReader(folder) as reader:
        paper_id = reader.find_paper(doi=HEA.doi)
        ids = [pid for group in reader.passage_ids_of([paper_id]).values() for pid in group]
        assert set(reader.pages_of(ids).values()) == {1, 2}
        assert reader.papers([paper_id])[paper_id].file == str(pdf)
