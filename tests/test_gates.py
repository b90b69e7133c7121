"""The trust gates of `ask` end to end over the real corpus: which question is answered from
which paper, which answer is printed, and what the refusals say (text and JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hea_rag.cli import cli

pytestmark = pytest.mark.corpus
PRESENT = "What is the compressive strength of MoNbVTa0.5Cr at 1500 °C?"
ABSENT_ALLOY = "What is the compressive strength of Ga2In3Sn5Bi at 1500 °C?"
ABSENT_PROPERTY = "What magnetostriction does the MoNbVTa0.5Cr alloy show?"
UNANSWERABLE = Path(__file__).parent / "data" / "in_domain_unanswerable.jsonl"


class ScriptedGenerator:
    """The real SmolLM2 for everything but the words it answers: those are given, so that the
    checks after generation can be shown an answer the paper does not hold."""

    def __init__(self, real, reply: str):
        self.real, self.reply, self.prompts = real, reply, []
        self.name, self.adapter, self.window = real.name, real.adapter, real.window
        self.count_tokens = real.count_tokens

    def generate(self, prompt: str, max_new_tokens: int, on_text=None) -> str:
        self.prompts.append(prompt)
        return self.reply


@pytest.fixture(scope="module")
def folder(corpus_index):
    return corpus_index[0]


@pytest.fixture(scope="module")
def smollm2():
    from hea_rag.generator import load_generator

    return load_generator("smollm2-135m")


def _answerer(folder, generator, **settings):
    from hea_rag.answer import Answerer, AskSettings
    from hea_rag.retrieve import open_retriever

    class Opened:
        def __enter__(self):
            self.context = open_retriever(folder)
            retriever = self.context.__enter__()
            return Answerer(generator, retriever, AskSettings(**settings))

        def __exit__(self, *exc):
            self.context.__exit__(*exc)

    return Opened()


@pytest.mark.parametrize("question, missing", [(ABSENT_ALLOY, "the alloy Ga2In3Sn5Bi"),
                                               (ABSENT_PROPERTY, "the magnetostriction")])
def test_question_naming_what_no_close_paper_mentions_is_refused_before_generating(
        folder, smollm2, question, missing):
    generator = ScriptedGenerator(smollm2, "3346 MPa")
    with _answerer(folder, generator) as answerer:
        answer = answerer.ask(question)
    assert not answer.answerable and answer.reason == "no_match"
    assert missing in answer.answer and generator.prompts == []
    assert answer.model_output is None and answer.evidence is None


def test_present_alloy_and_property_is_answered_with_its_evidence(folder):
    from hea_rag.answer import shipped_adapter
    from hea_rag.generator import load_generator

    generator = load_generator("smollm2-135m", shipped_adapter("smollm2-135m"))
    with _answerer(folder, generator) as answerer:
        answer = answerer.ask("What is the density of MoNbVTa0.5Cr?")
        abstract = answerer.retriever.reader.papers([answer.evidence.paper_id])[
            answer.evidence.paper_id].abstract
    assert answer.answerable and answer.reason is None, answer
    assert answer.answer == "9.11 g·cm−3"
    evidence = answer.evidence
    assert abstract[evidence.start:evidence.end] == evidence.text
    assert "MoNbVTa0.5Cr" in abstract and evidence.doi == answer.sources[0].doi
    from hea_rag.evidence import numbers_in

    assert numbers_in(answer.answer) <= numbers_in(evidence.text)


def test_answer_whose_number_the_passage_lacks_is_not_printed(folder, smollm2):
    generator = ScriptedGenerator(smollm2, "4242 MPa")
    with _answerer(folder, generator) as answerer:
        answer = answerer.ask(PRESENT)
    assert len(generator.prompts) == 1 and "MoNbVTa0.5Cr" in generator.prompts[0]
    assert not answer.answerable and answer.reason == "unsupported"
    assert "4242" not in answer.answer and answer.model_output == "4242 MPa"
    assert answer.evidence is None


def test_answer_held_by_the_passage_in_other_typography_is_printed(folder, smollm2):
    generator = ScriptedGenerator(smollm2, "3,346 MPa")  # the abstract prints 3346 MPa
    with _answerer(folder, generator) as answerer:
        answer = answerer.ask(PRESENT)
    assert answer.answerable and answer.answer == "3,346 MPa"
    assert "3346 MPa" in answer.evidence.text


def test_the_models_trained_refusal_is_a_refusal(folder, smollm2):
    from hea_rag.prompt import REFUSAL

    generator = ScriptedGenerator(smollm2, REFUSAL.lower().rstrip("."))
    with _answerer(folder, generator) as answerer:
        answer = answerer.ask(PRESENT)
    assert not answer.answerable and answer.reason == "model"
    assert answer.model_output == REFUSAL.lower().rstrip(".")
    assert "do not report this" in answer.answer


def test_next_paper_that_matches_answers_when_the_best_one_does_not(folder, smollm2):
    """The gate looks at the best three papers: the first that names the question's alloy,
    property and values is the one the model reads."""
    from dataclasses import replace

    generator = ScriptedGenerator(smollm2, "3346 MPa")
    with _answerer(folder, generator) as answerer:
        hits = answerer._retrieve(PRESENT)
        assert "MoNbVTa0.5Cr" in hits[0].text
        other = answerer.retriever.search("hardness of CoCrFeMnNi coatings", k=1)[0]
        reordered = [replace(other, rank=1), replace(hits[0], rank=2)]
        answer = answerer.ask(PRESENT, hits=reordered)
    assert answer.answerable and [s.paper_id for s in answer.sources] == [hits[0].paper.id]


def test_written_in_domain_questions_are_refused_over_the_real_corpus(folder, smollm2):
    questions = [json.loads(line)["question"] for line in UNANSWERABLE.read_text().splitlines()
                 if line.strip()]
    generator = ScriptedGenerator(smollm2, "1 MPa")
    with _answerer(folder, generator) as answerer:
        answers = [answerer.ask(q) for q in questions]
    assert len(answers) >= 10
    assert all(a.reason in ("no_match", "low_score") for a in answers), [
        (a.question, a.reason) for a in answers if a.reason not in ("no_match", "low_score")]
    assert generator.prompts == []


def test_json_and_text_output_carry_reason_evidence_and_model_output(folder):
    """With the shipped adapter: the density is answered; asked the ductility of (Ti1.5V)3ZrNb it
    answers with a strength in MPa, a unit no ductility has, which `ask` refuses as unsupported."""
    runner = CliRunner()
    base = ["--model", "smollm2-135m", "--index", str(folder)]
    density = "What is the density of MoNbVTa0.5Cr?"
    wrong_unit = "Can you tell me the ductility value for (Ti1.5V)3ZrNb at room temperature?"
    records = [json.loads(runner.invoke(cli, ["ask", q, "--json", *base]).stdout)
               for q in (density, wrong_unit, ABSENT_PROPERTY)]
    good, unsupported, no_match = records
    assert good["answerable"] and good["reason"] is None and good["model_output"] == good["answer"]
    assert set(good["evidence"]) == {"paper_id", "doi", "start", "end", "text"}
    assert not unsupported["answerable"] and unsupported["reason"] == "unsupported"
    assert "MPa" in unsupported["model_output"] and "MPa" not in unsupported["answer"]
    assert unsupported["evidence"] is None and unsupported["sources"]
    assert no_match["reason"] == "no_match" and no_match["model_output"] is None
    assert no_match["evidence"] is None and no_match["sources"] == []
    lines = runner.invoke(cli, ["ask", density, *base]).stdout.splitlines()
    assert lines[0] == good["answer"] and lines[1] == f"  evidence: {good['evidence']['text']}"
    refused = runner.invoke(cli, ["ask", wrong_unit, *base]).stdout.splitlines()
    assert refused[0] == "The model's answer was not found in the paper, so it is not given."
    refused_text = runner.invoke(cli, ["ask", ABSENT_PROPERTY, *base]).stdout
    assert refused_text.splitlines()[0].startswith("The indexed papers do not report this")


def test_eval_reports_refusals_by_gate(folder, tmp_path):
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"question": ABSENT_PROPERTY, "answer": "12 ppm"}) + "\n"
                  + json.dumps({"question": "Who painted the Mona Lisa?", "answer": "x"}) + "\n")
    result = CliRunner().invoke(cli, ["eval", str(qa), "--json", "--model", "smollm2-135m",
                                      "--index", str(folder)])
    assert result.exit_code == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["refused_no_match"] == 0.5 and metrics["refused_low_score"] == 0.5
    assert metrics["abstention_rate"] == 1.0 and metrics["refused_model"] == 0.0
