"""`ask --papers N` and `--papers all --filter`: each paper answered alone by the real SmolLM2 with
its shipped adapter, the gates applied per paper, every output format read back with the standard
library, and Ctrl-C during a corpus-wide run leaving a valid CSV."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys

import pytest
from click.testing import CliRunner

from hea_rag.cli import cli

QUESTION = "What is the yield strength of NbMoTaW?"
OFF_TOPIC = "Who painted the Mona Lisa?"
ABSENT = "What is the yield strength of Ga2In3Sn5Bi?"
# Invented abstracts: three papers on one alloy (two spellings), each with a yield strength;
# with conftest's invented corpus, which holds a fourth (NbMoTaW films, FILMS) without one. The
# shipped adapter answers from a paper that spells the alloy as the question does and tends to
# refuse one that spells it otherwise (WTaMoNb), although the gates see one alloy.
NBMOTAW_PAPERS = [
    {"Title": "Arc-melted NbMoTaW", "Year": "2020", "DOI": "10.9999/w.2020.001",
     "Abstract": "The NbMoTaW refractory high-entropy alloy was produced by vacuum arc melting. "
                 "Its yield strength was 1058 MPa at room temperature. The alloy kept a single "
                 "BCC phase after annealing at 1400 °C."},
    {"Title": "Sintered fine-grained NbMoTaW", "Year": "2021", "DOI": "10.9999/w.2021.002",
     "Abstract": "Fine-grained NbMoTaW was consolidated by spark plasma sintering at 1800 °C. "
                 "The sintered NbMoTaW alloy reached a yield strength of 1530 MPa in compression."},
    {"Title": "Yield strength of WTaMoNb at high temperature", "Year": "2022",
     "DOI": "10.9999/w.2022.003",
     "Abstract": "Compression tests of the WTaMoNb alloy were carried out up to 1600 °C. "
                 "The yield strength of WTaMoNb was 405 MPa at 1600 °C."},
]
VALUES = {"10.9999/w.2020.001": "1058", "10.9999/w.2021.002": "1530", "10.9999/w.2022.003": "405"}
FILMS = "10.9999/fake.2021.009"
BASE = ["--model", "smollm2-135m"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, embedder, hea_papers, csv_writer):
    from hea_rag.indexer import index_paths

    root = tmp_path_factory.mktemp("papers")
    rows = csv_writer(root / "papers.csv", hea_papers + NBMOTAW_PAPERS)
    index_paths([str(rows)], root / "index")
    return root / "index"


def _ask(folder, *arguments, stdin: str | None = None):
    result = CliRunner().invoke(cli, ["ask", *arguments, *BASE, "--index", str(folder)],
                                input=stdin)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


@pytest.fixture(scope="module")
def five(folder):
    """`ask --papers 5 --json` for QUESTION, read back."""
    return json.loads(_ask(folder, QUESTION, "--papers", "5", "--json").stdout)


def test_several_papers_about_one_alloy_give_several_rows(five):
    from hea_rag.evidence import numbers_in

    answered = [row for row in five["answers"] if row["answerable"]]
    assert len(answered) >= 2, five["answers"]
    assert len({row["source"]["doi"] for row in answered}) == len(answered)
    abstracts = {p["DOI"]: p["Abstract"] for p in NBMOTAW_PAPERS}
    for row in answered:
        doi = row["source"]["doi"]
        assert VALUES[doi] in row["answer"], row  # each paper's own value, not another's
        evidence = row["evidence"]
        assert evidence["doi"] == doi and evidence["text"] in abstracts[doi]
        assert abstracts[doi][evidence["start"]:evidence["end"]] == evidence["text"]
        assert numbers_in(row["answer"]) <= numbers_in(evidence["text"])
        assert row["alloy"] in ("NbMoTaW", "WTaMoNb")
    other_spelling = {row["source"]["doi"]: row for row in five["answers"]}["10.9999/w.2022.003"]
    assert other_spelling["reason"] in (None, "model")  # the gates let it through
    assert [row["rank"] for row in five["answers"]] == list(range(1, 6))
    assert five["summary"].startswith(f"{len(answered)} papers: ") and "MPa" in five["summary"]


def test_each_paper_gets_the_gates_of_a_single_answer(five):
    by_doi = {row["source"]["doi"]: row for row in five["answers"]}
    films = by_doi[FILMS]  # the alloy, but no yield strength: never generated
    assert films["reason"] == "no_match" and films["model_output"] is None
    assert "yield strength" in films["answer"]
    for row in five["answers"]:
        if row["answerable"]:
            assert row["reason"] is None and row["model_output"] == row["answer"]
        else:
            assert row["reason"] in ("no_match", "model", "unsupported") and row["evidence"] is None


def test_off_topic_and_absent_alloy_are_refused(folder):
    off = json.loads(_ask(folder, OFF_TOPIC, "--papers", "3", "--json").stdout)
    assert off["reason"] == "low_score" and off["answers"] == [] and not off["answerable"]
    assert off["summary"] is None
    text = _ask(folder, OFF_TOPIC, "--papers", "3").stdout
    assert text.strip() == "The indexed abstracts do not seem to answer this question."
    absent = json.loads(_ask(folder, ABSENT, "--papers", "3", "--json").stdout)
    assert [row["reason"] for row in absent["answers"]] == ["no_match"] * 3
    assert all("Ga2In3Sn5Bi" in row["answer"] for row in absent["answers"])
    folded = _ask(folder, ABSENT, "--papers", "3").stdout.strip().splitlines()
    assert folded == ["refused: no_match [1] [2] [3]"]


def test_text_output_rows_with_evidence_then_the_refused_line(folder, five):
    lines = _ask(folder, QUESTION, "--papers", "5").stdout.splitlines()
    answered = [row for row in five["answers"] if row["answerable"]]
    assert lines[0] == five["summary"]
    for row, (head, evidence) in zip(answered, zip(lines[1::2], lines[2::2])):
        assert head.startswith(f"[{row['rank']}] {row['answer']}\t{row['alloy']}\t"
                               f"{row['source']['doi']}\t")
        assert evidence == f"  evidence: {row['evidence']['text']}"
    refused = [row for row in five["answers"] if not row["answerable"]]
    assert lines[-1].startswith("refused: ") and len(lines) == 1 + 2 * len(answered) + 1
    assert all(f"[{row['rank']}]" in lines[-1] for row in refused)


@pytest.mark.parametrize("fmt, delimiter", [("csv", ","), ("tsv", "\t")])
def test_csv_and_tsv_parse_with_the_standard_library(folder, five, fmt, delimiter):
    from hea_rag.output import ROW_COLUMNS

    result = _ask(folder, QUESTION, "--papers", "5", "--format", fmt)
    rows = list(csv.DictReader(io.StringIO(result.stdout), delimiter=delimiter))
    answered = [row for row in five["answers"] if row["answerable"]]
    assert rows and list(rows[0]) == list(ROW_COLUMNS)
    assert [(r["rank"], r["doi"], r["answer"], r["alloy"]) for r in rows] == [
        (str(a["rank"]), a["source"]["doi"], a["answer"], a["alloy"]) for a in answered]
    assert all(r["question"] == QUESTION and r["evidence"] for r in rows)
    assert five["summary"] in result.stderr  # the summary is status, not a row


def test_markdown_is_a_table_with_one_row_per_answer(folder, five):
    lines = _ask(folder, QUESTION, "--papers", "5", "--format", "markdown").stdout.splitlines()
    table = [line for line in lines if line.startswith("|")]
    answered = [row for row in five["answers"] if row["answerable"]]
    assert table[0] == "| # | paper | alloy | answer | evidence |"
    assert table[1] == "|---|---|---|---|---|"
    assert len(table) == 2 + len(answered)
    for line, row in zip(table[2:], answered):
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        assert len(cells) == 5 and cells[0] == str(row["rank"]) and cells[3] == row["answer"]
    assert lines[lines.index(table[0]) - 2] == five["summary"]  # the summary above the table


def test_json_format_equals_json_flag_and_papers_1_is_todays_ask(folder):
    flag = json.loads(_ask(folder, QUESTION, "--papers", "2", "--json").stdout)
    named = json.loads(_ask(folder, QUESTION, "--papers", "2", "--format", "json").stdout)
    for record in (flag, named):
        record.pop("timings")
    assert flag == named
    today = json.loads(_ask(folder, QUESTION, "--json").stdout)
    one = json.loads(_ask(folder, QUESTION, "--papers", "1", "--json").stdout)
    assert set(today) == set(one) and "answers" not in one  # --papers 1 changes nothing
    assert (one["answer"], one["evidence"], one["sources"]) == (
        today["answer"], today["evidence"], today["sources"])


def test_batch_mode_rows_follow_their_question(folder):
    result = _ask(folder, "--papers", "3", "--format", "csv", stdin=f"{QUESTION}\n{ABSENT}\n"
                                                                      f"{QUESTION}\n")
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0][0] == "question" and sum(row[0] == "question" for row in rows) == 1
    asked = [row[0] for row in rows[1:]]
    half = len(asked) // 2
    assert asked and asked == [QUESTION] * len(asked) and rows[1:half + 1] == rows[half + 1:]
    text = _ask(folder, "--papers", "3", stdin=f"{ABSENT}\n{QUESTION}\n").stdout.splitlines()
    assert text[0] == f"# {ABSENT}" and text[1].startswith("refused: no_match")
    assert text[2] == f"# {QUESTION}"


def test_batched_generation_equals_one_prompt_at_a_time_in_full_precision(folder):
    """Left padding and its mask change nothing: in fp32 the batched answers are the ones
    generated alone (in bf16 rounding can differ between shapes, see the README)."""
    import torch

    from hea_rag.answer import Answerer, AskSettings, shipped_adapter
    from hea_rag.generator import load_generator
    from hea_rag.retrieve import open_retriever

    generator = load_generator("smollm2-135m", shipped_adapter("smollm2-135m"))
    generator.model.to(torch.float32)
    with open_retriever(folder) as retriever:
        answerer = Answerer(generator, retriever, AskSettings())
        prompts = [answerer.prompt_for(QUESTION, None, [hit])[0]
                   for hit in retriever.search(QUESTION, k=4)]
    assert len({generator.count_tokens(p) for p in prompts}) > 1  # padding is exercised
    alone = [generator.generate(prompt, 24) for prompt in prompts]
    assert generator.generate_batch(prompts, 24) == alone
    assert any("1058" in answer or "1530" in answer for answer in alone)


def test_batch_size_option_keeps_the_gates(folder):
    batched = json.loads(_ask(folder, QUESTION, "--papers", "4", "--batch-size", "4",
                              "--json").stdout)
    assert [row["rank"] for row in batched["answers"]] == [1, 2, 3, 4]
    for row in batched["answers"]:
        if row["answerable"]:
            assert VALUES[row["source"]["doi"]] in row["answer"]
            assert row["answer"] == row["model_output"] and row["evidence"]


def test_all_papers_of_a_filter_with_progress(folder):
    from hea_rag.answer import Answerer, AskSettings, shipped_adapter
    from hea_rag.answers import PaperAnswerer, PapersSettings, filter_papers
    from hea_rag.generator import load_generator
    from hea_rag.retrieve import open_retriever

    generator = load_generator("smollm2-135m", shipped_adapter("smollm2-135m"))
    progress, rows = [], []
    with open_retriever(folder) as retriever:
        matched = filter_papers(retriever.reader, "WTaMoNb")  # any spelling of the alloy
        doi = {p: retriever.reader.papers([p])[p].doi for p, _ in matched}
        answerer = PaperAnswerer(Answerer(generator, retriever, AskSettings()),
                                 PapersSettings("all", "WTaMoNb"))
        result = answerer.ask("What is the yield strength?", rows.append,
                              lambda done, total: progress.append((done, total)))
    assert set(doi.values()) == set(VALUES) | {FILMS}
    assert progress == [(n, 4) for n in range(1, 5)] and rows == result.answers
    assert {row.source.doi for row in result.answers} == set(doi.values())
    assert {row.source.doi for row in result.answered} <= set(VALUES)
    assert len(result.answered) >= 2


def test_filter_matches_every_word_and_formulas_by_elements(folder):
    from hea_rag.answers import filter_papers
    from hea_rag.errors import HeaRagError
    from hea_rag.store import IndexReader

    with IndexReader(folder) as reader:
        def dois(words):
            return {reader.papers([p])[p].doi for p, _ in filter_papers(reader, words)}

        assert dois("MoNbTaW") == dois("NbMoTaW") == set(VALUES) | {FILMS}
        assert dois("NbMoTaW yield") == set(VALUES)
        assert dois("NbMoTaW sputtering") == {FILMS}
        with pytest.raises(HeaRagError, match="no word the index can search for"):
            filter_papers(reader, "of the")


@pytest.mark.parametrize("arguments, message", [
    (["--papers", "all"], "--papers all needs --filter"),
    (["--filter", "NbMoTaW"], "--papers all needs --filter"),
    (["--papers", "0"], "not a number from 1 to 50"),
    (["--papers", "3", "--context", "text"], "does not go with --context"),
    (["--papers", "3", "-k", "2"], "does not go with -k"),
    (["--json", "--format", "csv"], "--json and --format csv"),
])
def test_options_that_do_not_go_together_are_usage_errors(folder, arguments, message):
    result = CliRunner().invoke(cli, ["ask", QUESTION, *arguments, *BASE, "--index", str(folder)])
    assert result.exit_code == 2 and message in result.stderr


@pytest.fixture(scope="module")
def long_folder(tmp_path_factory, embedder, csv_writer):
    """Forty invented NbMoTaW papers with a yield strength each: a run long enough to stop."""
    from hea_rag.indexer import index_paths

    papers = [{"Title": f"NbMoTaW study {n}", "Year": "2024", "DOI": f"10.9999/long.{n:03d}",
               "Abstract": f"The NbMoTaW alloy of batch {n} was arc melted and annealed at "
                           f"{1000 + 10 * n} °C. Its yield strength was {900 + 7 * n} MPa."}
              for n in range(40)]
    root = tmp_path_factory.mktemp("long-papers")
    index_paths([str(csv_writer(root / "papers.csv", papers))], root / "index")
    return root / "index"


def test_ctrl_c_during_papers_all_leaves_a_valid_csv(long_folder):
    # the child gets the default Ctrl-C handling a shell gives it (a test run started in the
    # background has SIGINT ignored, which a child would inherit)
    process = subprocess.Popen(
        [sys.executable, "-m", "hea_rag", "ask", "What is the yield strength?", "--papers", "all",
         "--filter", "NbMoTaW", "--format", "csv", *BASE, "--index", str(long_folder)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    written = [process.stdout.readline(), process.stdout.readline()]  # header, first row
    process.send_signal(signal.SIGINT)
    rest, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "hea-rag: error: interrupted"
    rows = list(csv.reader(io.StringIO("".join(written) + rest)))
    assert rows[0][:2] == ["question", "rank"] and 2 <= len(rows) < 41  # stopped before the end
    assert all(len(row) == len(rows[0]) for row in rows)
    for row in rows[1:]:
        assert row[7].endswith("MPa") and row[7] in row[8]  # whole rows: answer and evidence


@pytest.mark.parametrize("answers, line", [
    (["1.2 GPa", "1500 MPa", "1.35 GPa"], "3 papers: 1.2–1.5 GPa"),
    (["⁓1390 ± 20 MPa", "2118 MPa", "600–800 °C"], "3 papers: 1390–2118 MPa; 600–800 °C"),
    (["1058 MPa", "1058 MPa at room temperature"], "2 papers: 1058 MPa"),
    (["BCC", "a single BCC phase"], "2 papers agree: BCC"),
    (["BCC", "BCC + Laves phase"], "2 papers give 2 different phases: BCC, BCC+Laves"),
    (["Grain refinement", "grain refinement.", "twinning"],
     "3 papers give 2 different answers: Grain refinement; twinning"),
    (["1058 MPa"], None),
])
def test_summary_line_is_computed_from_the_answers(answers, line):
    from hea_rag.agreement import summary_line

    assert summary_line(answers) == line
