"""`hea-rag ask` and `eval` end to end: the real corpus, the real MiniLM, the real SmolLM2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from hea_rag.cli import cli

pytestmark = pytest.mark.corpus
QUESTION = "What is the compressive strength of MoNbVTa0.5Cr at 1500 °C?"
OFF_CORPUS = "Who painted the Mona Lisa?"


@pytest.fixture(scope="module")
def folder(corpus_index):
    return corpus_index[0]


def _papers(folder):
    from hea_rag.store import IndexReader

    with IndexReader(folder) as reader:
        return {row[0]: row[1] for row in reader.db.execute("SELECT id, doi FROM papers")}


def test_ask_json_cites_real_papers_of_the_index(folder):
    result = CliRunner().invoke(
        cli, ["ask", QUESTION, "--json", "--model", "smollm2-135m", "--index", str(folder)])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    answer = json.loads(lines[0])
    assert answer["question"] == QUESTION and answer["answerable"] is True
    assert answer["answer"] and "\n" not in answer["answer"]
    assert answer["model"] == "smollm2-135m" and answer["adapter"] is None
    assert set(answer["timings"]) == {"retrieve", "generate"}
    papers = _papers(folder)
    assert answer["sources"], "an answered question cites its papers"
    for source in answer["sources"]:
        assert papers[source["paper_id"]] == source["doi"]
        assert {"rank", "doi", "title", "year", "score", "text"} <= set(source)
    assert "MoNbVTa0.5Cr" in answer["sources"][0]["text"]


def test_batch_from_stdin_in_order_with_abstention(folder):
    command = [sys.executable, "-m", "hea_rag", "ask", "--json", "--model", "smollm2-135m",
               "--index", str(folder)]
    done = subprocess.run(command, input=f"{QUESTION}\n{OFF_CORPUS}\n", capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    first, second = (json.loads(line) for line in done.stdout.strip().splitlines())
    assert first["question"] == QUESTION and first["answerable"] is True
    assert second["question"] == OFF_CORPUS
    assert second["answerable"] is False and second["sources"] == []
    assert "Traceback" not in done.stderr


def test_given_context_skips_retrieval(tmp_path):
    context = tmp_path / "context.txt"
    context.write_text("The CoCrNi alloy reached a yield strength of 1200 MPa at 77 K.")
    result = CliRunner().invoke(cli, ["ask", "What is the yield strength of CoCrNi at 77 K?",
                                      "--context", f"@{context}", "--json", "--model",
                                      "smollm2-135m", "--index", str(tmp_path / "none")])
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    # the index folder does not exist: had it searched, it would have failed
    assert answer["sources"] == [] and answer["answerable"] is True


def test_unavailable_model_is_one_line_error_naming_the_offline_preset(folder, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = CliRunner().invoke(cli, ["ask", QUESTION, "--model", "microsoft/phi-2",
                                      "--index", str(folder)])
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "smollm2-135m" in lines[0] and "microsoft/phi-2" in lines[0]


def test_eval_reports_retrieval_and_answer_metrics(folder, shared_dir, tmp_path):
    qa = [json.loads(line) for line in (shared_dir / "bench" / "dev_qa.jsonl").read_text().splitlines()]
    sample = tmp_path / "qa.jsonl"
    sample.write_text("\n".join(json.dumps(q) for q in qa if q["split"] == "heldout") + "\n")
    result = CliRunner().invoke(cli, ["eval", str(sample), "--split", "heldout", "--limit", "3",
                                      "--json", "--model", "smollm2-135m", "--index", str(folder)])
    assert result.exit_code == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["questions"] == 3 and metrics["with_gold_paper"] == 3
    assert metrics["recall@10"] >= metrics["recall@1"] > 0
    for key in ("exact_match", "f1", "contains", "abstention_rate", "seconds_per_question", "mrr"):
        assert 0 <= metrics[key] <= (1 if key != "seconds_per_question" else 600)


def test_finetune_retrieved_prompts_equal_the_prompts_ask_sends(folder):
    """Training looks like inference: same passages, same packing, same budget, same string."""
    from hea_rag.answer import Answerer, AskSettings, prompt_budget
    from hea_rag.generator import load_generator
    from hea_rag.grounding import Grounder
    from hea_rag.qa_data import QAPair
    from hea_rag.retrieve import open_retriever

    generator = load_generator("smollm2-135m")
    settings = AskSettings()
    budget = lambda q: prompt_budget(settings, generator.window, generator.count_tokens(q))  # noqa: E731
    with open_retriever(folder) as retriever:
        answerer = Answerer(generator, retriever, settings)
        grounder = Grounder("retrieved", generator.count_tokens, budget, retriever, settings.top_k)
        for question, answer in [(QUESTION, "3346 MPa"),
                                 ("What is the yield strength of MoNbVTa0.5Cr at 1500 °C?", "2783 MPa")]:
            hits = retriever.search(question, k=settings.top_k)
            ask_prompt, _ = answerer._prompt(question, None, hits)
            example = grounder.ground(QAPair(question, answer))
            assert example is not None and example.prompt == ask_prompt
            assert ask_prompt.endswith(f"\nQuestion: {question}\nAnswer:")


def test_abstention_weighs_the_best_three_papers_whatever_k(folder):
    """With -k 1 the prompt shows one paper, but the calibrated gate still sees three: a first
    paper whose shown passage is far from the question must not make a good question refused."""
    from dataclasses import replace

    from hea_rag.answer import GATE_HITS, Answerer, AskSettings
    from hea_rag.generator import load_generator
    from hea_rag.retrieve import open_retriever

    settings = AskSettings(top_k=1, max_new_tokens=1)
    with open_retriever(folder) as retriever:
        answerer = Answerer(load_generator("smollm2-135m"), retriever, settings)
        hits = answerer._retrieve(QUESTION)
        assert len(hits) == GATE_HITS == 3
        far_first = [replace(hits[0], dense=0.0), replace(hits[1], dense=0.9), hits[2]]
        assert answerer.ask(QUESTION, hits=far_first).answerable
        assert len(answerer.ask(QUESTION, hits=far_first).sources) == 1
        all_far = [replace(hit, dense=0.0) for hit in hits]
        assert not answerer.ask(QUESTION, hits=all_far).answerable
