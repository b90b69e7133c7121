"""`hea-rag synth`: statements found in real abstracts of the shared corpus (read at run time),
answers that are verbatim spans, questions that do not give their answer away, the command over a
small index of abstracts written here, and the hand-written natural-question set."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from hea_rag.cli import cli
from hea_rag.errors import InputError
from hea_rag.evidence import match_question
from hea_rag.properties import properties_in
from hea_rag.qa_data import read_jsonl_pairs
from hea_rag.synth import KINDS, abstract_sha1, contains_answer, split_of, synthesize
from hea_rag.synth.phrasing import SYNONYMS, property_names
from hea_rag.synth.reading import read_paper
from hea_rag.synth.source import parse_selection
from hea_rag.synth.statements import statement_facts
from hea_rag.synth.values import value_facts

NATURAL = Path(__file__).resolve().parents[1] / "scripts" / "data" / "natural_heldout.jsonl"
RECORD_FIELDS = {"question", "answer", "kind", "paper_id", "doi", "abstract_sha1", "start", "end",
                 "split"}


@pytest.fixture(scope="module")
def abstracts(csv_path) -> dict[str, str]:
    """The shared corpus: abstract sha1 (dev_qa's key) -> abstract as the CSV holds it."""
    with open(csv_path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    found: dict[str, str] = {}
    for row in rows:
        found.setdefault(abstract_sha1(row["Abstract"]), row["Abstract"])
    return found


def abstract_of(abstracts: dict[str, str], prefix: str) -> str:
    (text,) = [text for sha1, text in abstracts.items() if sha1.startswith(prefix)]
    return text


def facts(abstract: str, kind: str | None = None):
    paper = read_paper(abstract)
    found = [*value_facts(paper), *statement_facts(paper)]
    return [f for f in found if kind is None or f.kind == kind]


def value(abstract: str, answer: str):
    """The value fact answered by `answer` (and not a temperature asked for)."""
    (fact,) = [f for f in facts(abstract, "value")
               if abstract[f.start:f.end] == answer and f.form != "temperature"]
    return fact


# --- extraction on real abstracts, checked by hand ------------------------------------------

# (abstract sha1 prefix, answer, property, alloy, a piece of the condition or None)
VALUES = [
    ("458d6dee", "3346 MPa", "compressive strength", "MoNbVTa0.5Cr", "1500 °C"),
    ("458d6dee", "2783 MPa", "yield strength", "MoNbVTa0.5Cr", "1500 °C"),
    ("458d6dee", "2.33 μm", "grain size", "MoNbVTa0.5Cr", "sintered at 1500 °C"),
    ("458d6dee", "295.28 kPa·m3·kg−1", "specific yield strength", "MoNbVTa0.5Cr", None),
    ("391f4f3e", "312 MPa", "compressive yield strength", "NbMoTaWHf", "1800 °C"),  # a list
    ("39f3f338", "988 MPa", "yield strength", "TaNbTiZr", None),  # "respectively"
    ("39f3f338", "1173 MPa", "tensile strength", "TaNbTiZr", None),
    ("39f3f338", "3.99%", "elongation", "TaNbTiZr", None),
    ("5068042b", "1311 MPa", "yield strength", "TiTaNbHfNi0.5", None),  # paired with the alloys
    ("ce63852c", "692 HV", "microhardness", "Al0.2CrNbTiV", "annealing at 850 °C"),
    ("ce63852c", "0.67", "friction coefficient", "Al0.2CrNbTiV", "annealed at 650 °C"),
    ("f5ed3b96", "HV0.2 410", "hardness", "Mo0.5NbTiVCr0.25", "600 °C"),
    ("b9d05ea7", "124.1 MPa", "shear strength", "TiZrTaHfNb", "1040 °C"),
]


@pytest.mark.parametrize("prefix, answer, prop, alloy, condition", VALUES)
def test_value_statements_have_the_right_property_alloy_and_condition(
        abstracts, prefix, answer, prop, alloy, condition):
    fact = value(abstract_of(abstracts, prefix), answer)
    assert prop in fact.prop
    assert fact.alloy is not None and fact.alloy.name == alloy
    assert condition is None or condition in (fact.condition or "")


def test_a_value_is_not_taken_for_a_property_its_unit_cannot_measure(abstracts):
    text = abstract_of(abstracts, "458d6dee")
    answers = {text[f.start:f.end] for f in facts(text, "value")}
    assert "26 %" not in answers  # "26 % lower than that of WNbMoTaV": a comparison, no density
    assert value(text, "9.11 g·cm−3").prop == "density"
    (comparison,) = [f for f in facts(text, "comparison") if text[f.start:f.end] == "26 %"]
    assert comparison.prop == "density" and "WNbMoTaV" in comparison.subject


def test_the_temperature_of_a_value_can_be_asked_for(abstracts):
    text = abstract_of(abstracts, "458d6dee")
    asked = [f for f in facts(text, "value") if f.form == "temperature" and f.given == "3346 MPa"]
    assert [text[f.start:f.end] for f in asked] == ["1500 °C"]


def test_phases_causes_comparisons_and_elements_are_found(abstracts):
    found = {kind: [] for kind in KINDS}
    for prefix in ("458d6dee", "39f3f338", "ce63852c", "f5ed3b96", "4a365ff8"):
        text = abstract_of(abstracts, prefix)
        for fact in facts(text):
            found[fact.kind].append(text[fact.start:fact.end])
    assert "C14 Laves phase" in found["phase"]
    assert "the effects of high lattice distortion strengthening and high grain boundary " \
           "strengthening" in found["mechanism"]
    assert "two orders of magnitude" in found["comparison"]
    assert {"Ti", "Zr"} <= set(found["element"])


def test_descriptions_name_the_main_alloy_without_its_formula(abstracts):
    assert "the laser-clad coating" in read_paper(abstract_of(abstracts, "f5ed3b96")).descriptions
    assert "the refractory HEA" in read_paper(abstract_of(abstracts, "458d6dee")).descriptions
    # two alloys of the same elements: "the refractory HEA" could be either
    assert read_paper(abstract_of(abstracts, "5068042b")).descriptions == []
    questions = [p.question for p in synthesize(abstract_of(abstracts, "f5ed3b96"), per_paper=50)]
    assert any("the laser-clad coating" in q for q in questions)


# --- every pair of the whole corpus ---------------------------------------------------------


@pytest.fixture(scope="module")
def corpus_pairs(abstracts):
    return [(text, synthesize(text)) for text in abstracts.values()]


def test_every_answer_is_a_verbatim_span_and_no_question_holds_its_answer(corpus_pairs):
    assert len(corpus_pairs) == 454
    for text, pairs in corpus_pairs:
        for pair in pairs:
            assert text[pair.start:pair.end] == pair.answer
            assert pair.answer.strip() == pair.answer and pair.answer
            assert not contains_answer(pair.question, pair.answer), pair
            assert match_question(pair.question, text).ok, pair  # `ask` lets it through


def test_the_corpus_yields_every_kind_and_most_papers_yield_pairs(corpus_pairs):
    kinds = Counter(pair.kind for _, pairs in corpus_pairs for pair in pairs)
    assert set(kinds) == set(KINDS)
    with_pairs = sum(1 for _, pairs in corpus_pairs if pairs)
    assert with_pairs >= 0.7 * len(corpus_pairs)
    for _, pairs in corpus_pairs:
        assert len(pairs) <= 12 and len({p.question for p in pairs}) == len(pairs)


def test_a_question_has_one_answer_in_its_paper():
    text = ("The CoCrNiV alloy had a yield strength of 800 MPa. In another test the CoCrNiV alloy "
            "had a yield strength of 650 MPa. Its hardness was 310 HV.")
    pairs = synthesize(text, per_paper=50)
    assert {p.answer for p in pairs} == {"310 HV"}


def test_synonyms_name_the_same_vocabulary_property():
    """`ask`'s question gate reads each synonym as a property of the vocabulary, the same one as
    the phrase it replaces (where the vocabulary knows that phrase: not `microhardness`)."""
    for written, alternatives in SYNONYMS:
        phrase = set(properties_in(written.replace("['’]", "'")))
        for alternative in alternatives:
            named = set(properties_in(alternative))
            assert named and (not phrase or phrase & named), alternative
    assert {"compressive yield stress", "yield strength in compression"} <= set(
        property_names("compressive yield strength"))


def test_phrasings_vary():
    text = ("The refractory high-entropy alloy NbTaTiV was made by arc melting. Its compressive "
            "yield strength reached 1250 MPa at room temperature.")
    questions = [p.question for p in synthesize(text, per_paper=50)]
    assert len(questions) >= 5
    assert len({q.split()[0] for q in questions}) >= 3  # not one template
    assert any("NbTaTiV" not in q for q in questions)  # described, not only named


def test_splits_are_a_fixed_draw_per_paper():
    keys = [hashlib.sha1(str(n).encode()).hexdigest() for n in range(400)]
    assert {split_of(k, 0.0) for k in keys} == {None}
    assert {split_of(k, 1.0) for k in keys} == {"heldout"}
    draws = [split_of(k, 0.25) for k in keys]
    assert draws == [split_of(k, 0.25) for k in keys]
    assert 0.15 < draws.count("heldout") / len(draws) < 0.35


def test_paper_selection(tmp_path):
    assert parse_selection("all").only is None
    both = {"10.9999/a", "10.9999/b"}
    assert parse_selection("10.9999/A, https://doi.org/10.9999/b").only == both
    listed = tmp_path / "skip.txt"
    listed.write_text("# papers to skip\n10.9999/X\n" + "ab" * 20 + "\n"
                      '{"doi": "", "abstract_sha1": "' + "cd" * 20 + '"}\n', encoding="utf-8")
    selection = parse_selection(f"exclude:{listed}")
    assert selection.excluded == {"10.9999/x", "ab" * 20, "cd" * 20}
    assert not selection.wants("10.9999/x", "ef" * 20) and selection.wants(None, "ef" * 20)
    listed.write_text("not a paper\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 1"):
        parse_selection(f"exclude:{listed}")


# --- the command, over an index of abstracts written here -----------------------------------

MINI_PAPERS = [
    {"Title": "Arc-melted NbTaTiV", "Year": "2024", "DOI": "10.9999/synth.001",
     "Abstract": "The refractory high-entropy alloy NbTaTiV was prepared by arc melting. Its "
                 "compressive yield strength was 1250 MPa at room temperature and 620 MPa at "
                 "1000 °C. The alloy consists of a single BCC phase. The high strength was "
                 "attributed to severe lattice distortion."},
    {"Title": "", "Year": "", "DOI": "",
     "Abstract": "Laser-clad CoCrFeNiMo0.2 coatings were deposited on steel. After annealing at "
                 "700 °C for 2 h, the microhardness of the coating reached 540 HV. The wear rate "
                 "of the coating was two orders of magnitude lower than that of the steel "
                 "substrate."},
    {"Title": "Light Al0.5CrNbTi2V0.5", "Year": "2023", "DOI": "10.9999/synth.003",
     "Abstract": "Al0.5CrNbTi2V0.5 has a density of 5.9 g/cm3 and a tensile yield strength of "
                 "1130 MPa, while its elongation reaches 12 %. Zr-rich particles formed at the "
                 "grain boundaries."},
]


@pytest.fixture(scope="module")
def mini_index(tmp_path_factory, embedder, csv_writer):
    from hea_rag.indexer import index_paths

    folder = tmp_path_factory.mktemp("synth")
    index_paths([str(csv_writer(folder / "mini.csv", MINI_PAPERS))], folder / "index")
    return folder / "index"


def run_synth(*args: str):
    return CliRunner().invoke(cli, ["synth", *args])


def records_of(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_synth_writes_pairs_finetune_can_ground(mini_index, tmp_path):
    from hea_rag.store import IndexReader

    out = tmp_path / "synth.jsonl"
    result = run_synth("--index", str(mini_index), "-o", str(out), "--per-paper", "6")
    assert result.exit_code == 0, result.output
    summary = r"synth: 3 papers, \d+ pairs \(.*value \d+.*\), [\d.]+ papers/s"
    assert re.search(summary, result.output)
    records = records_of(out.read_text(encoding="utf-8"))
    assert {r["paper_id"] for r in records} == {1, 2, 3}
    with IndexReader(mini_index) as reader:
        papers = reader.papers([1, 2, 3])
        for record in records:
            assert set(record) == RECORD_FIELDS and record["split"] is None
            abstract = papers[record["paper_id"]].abstract
            assert abstract[record["start"]:record["end"]] == record["answer"]
            # the key finetune grounds a pair with finds its own paper, with or without a DOI
            found = reader.find_paper(record["doi"] or None, record["abstract_sha1"])
            assert found == record["paper_id"]
    assert len(list(read_jsonl_pairs(out))) == len(records)
    assert Counter(r["paper_id"] for r in records).most_common(1)[0][1] <= 6


def test_synth_selects_papers_and_splits_them(mini_index, tmp_path):
    result = run_synth("--index", str(mini_index), "--papers", "10.9999/SYNTH.003",
                       "--heldout-fraction", "1")
    assert result.exit_code == 0, result.output
    records = records_of(result.stdout)
    assert {r["doi"] for r in records} == {"10.9999/synth.003"}
    assert {r["split"] for r in records} == {"heldout"}
    skip = tmp_path / "skip.jsonl"
    skip.write_text(json.dumps({"question": "q", "answer": "a", "doi": "10.9999/synth.001"}) + "\n",
                    encoding="utf-8")
    result = run_synth("--index", str(mini_index), "--papers", f"exclude:{skip}")
    assert result.exit_code == 0, result.output
    assert {r["paper_id"] for r in records_of(result.stdout)} == {2, 3}


def test_synth_names_an_unknown_doi_in_one_line(mini_index):
    result = run_synth("--index", str(mini_index), "--papers", "10.9999/nowhere")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "hea-rag: error: --papers: not in the index: 10.9999/nowhere"]


# --- the hand-written natural-question set ----------------------------------------------------


def test_natural_questions_are_answered_verbatim_by_their_heldout_papers(shared_dir, abstracts):
    with open(shared_dir / "bench" / "dev_qa.jsonl", encoding="utf-8") as handle:
        heldout = {json.loads(line)["abstract_sha1"] for line in handle
                   if json.loads(line).get("split") == "heldout"}
    records = [json.loads(line) for line in NATURAL.read_text(encoding="utf-8").splitlines()]
    assert len(records) >= 60
    assert {r["abstract_sha1"] for r in records} == heldout  # all 20, nothing else
    for record in records:
        assert set(record) == {"question", "answer", "abstract_sha1", "doi", "split", "kind"}
        assert record["split"] == "heldout" and record["kind"] in KINDS
        assert record["answer"] in abstracts[record["abstract_sha1"]], record
        assert not contains_answer(record["question"], record["answer"]), record
        assert not record["question"].startswith("Could you provide")
    assert min(Counter(r["abstract_sha1"] for r in records).values()) >= 3


# --- paraphrasing -----------------------------------------------------------------------------


def test_a_paraphrase_must_keep_alloy_property_values_and_what_is_asked():
    from hea_rag.synth.paraphrase import first_question, keeps_meaning

    original = "At what sintering temperature does MoNbVTa0.5Cr reach a proof stress of 2783 MPa?"
    assert keeps_meaning(original, "Which sintering temperature gives MoNbVTa0.5Cr a proof "
                                   "stress of 2783 MPa?")
    assert not keeps_meaning(original, original.replace("  ", " "))  # no rewrite at all
    assert not keeps_meaning(original, "How does MoNbVTa0.5Cr reach a proof stress of 2783 MPa?")
    assert not keeps_meaning(original, "At what sintering temperature does MoNbVTa reach a proof "
                                       "stress of 2783 MPa?")  # another alloy
    assert not keeps_meaning(original, "At what sintering temperature does MoNbVTa0.5Cr reach a "
                                       "hardness of 2783 MPa?")  # another property
    assert not keeps_meaning(original, "At what sintering temperature does MoNbVTa0.5Cr reach its "
                                       "proof stress?")  # the value is lost
    assert not keeps_meaning("What was AlCoCrFeNi alloyed with?",
                             "What is the name of the alloy that contains AlCoCrFeNi?")
    assert keeps_meaning("Compression strength of MoNbVTa0.5Cr when sintered at 1500 °C?",
                         "What is the compressive strength of MoNbVTa0.5Cr when sintered at 1500 °C?")
    assert first_question(' "What is the density of the HEA?"\nQuestion: x') == \
        "What is the density of the HEA?"
    assert first_question("The density of the HEA is 7.9 g/cm3.") is None  # answered, not asked


def test_paraphraser_keeps_only_faithful_fair_rewrites():
    from hea_rag.synth.paraphrase import Paraphraser

    replies = iter(["What is the Vickers hardness of AlCoCrFeNi? It is 500 HV.",
                    "The hardness of AlCoCrFeNi is 500 HV.",
                    "Which Vickers hardness is reported for AlCoCrFeNi?"])
    seen_prompts = []

    def generate(prompt):
        seen_prompts.append(prompt)
        return next(replies)

    rewriter = Paraphraser(generate)
    question = "What Vickers hardness does AlCoCrFeNi reach?"
    assert rewriter.rewrite(question, fair=lambda q: "500" not in q) is None  # gives it away
    assert rewriter.rewrite(question, fair=lambda q: True) is None  # an answer, not a question
    assert rewriter.rewrite(question, fair=lambda q: True) == (
        "Which Vickers hardness is reported for AlCoCrFeNi?")
    assert (rewriter.count.kept, rewriter.count.tried) == (1, 3)
    assert all(p.endswith(f"Question: {question}\nRewrite:") for p in seen_prompts)


@pytest.mark.slow
def test_synth_paraphrases_with_the_embedded_model(mini_index, tmp_path):
    """The real SmolLM2 rewrites; whatever it keeps is a faithful, fair question about the same
    span, written after its original."""
    from hea_rag.store import IndexReader
    from hea_rag.synth import fair
    from hea_rag.synth.paraphrase import keeps_meaning

    out = tmp_path / "synth.jsonl"
    result = run_synth("--index", str(mini_index), "-o", str(out), "--per-paper", "3",
                       "--papers", "10.9999/SYNTH.001", "--paraphraser", "smollm2-135m")
    assert result.exit_code == 0, result.output
    records = records_of(out.read_text(encoding="utf-8"))
    originals = [r for r in records if "paraphrase_of" not in r]
    assert re.search(rf"paraphrases kept (\d+) of {len(originals)}", result.output)
    with IndexReader(mini_index) as reader:
        abstract = reader.papers([1])[1].abstract
    for at, record in enumerate(records):
        if "paraphrase_of" in record:
            before = records[at - 1]
            assert record["paraphrase_of"] == before["question"]
            assert (record["answer"], record["start"], record["end"]) == (
                before["answer"], before["start"], before["end"])
            assert keeps_meaning(before["question"], record["question"])
            assert fair(record["question"], record["answer"], abstract)
