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
# An invented abstract longer than the prompt budget below, whose answer sentence comes last.
LONG_SENTENCES = [
    "The Zr45Ti20Nb15V20 alloy was produced by vacuum arc melting under argon.",
    "The ingots were remelted five times and flipped each time to ensure chemical homogeneity.",
    "Homogenization was carried out at 1200 °C for 24 h followed by water quenching.",
    "X-ray diffraction revealed a single body-centred cubic solid solution.",
    "Cold rolling to 60 % thickness reduction introduced a high density of dislocations.",
    "Tensile ductility reached an elongation of 25 % before fracture.",
    "Aging at 500 °C for 10 h precipitated a fine omega phase in the matrix.",
    "After aging, the Vickers hardness of Zr45Ti20Nb15V20 was 777 HV.",
]
LONG_QUESTION = "What was the Vickers hardness of Zr45Ti20Nb15V20 after aging?"


@pytest.fixture(scope="module")
def folder(corpus_index):
    return corpus_index[0]


@pytest.fixture(scope="module")
def long_index(tmp_path_factory, embedder, hea_papers, csv_writer):
    """The invented corpus plus the long abstract, one or two sentences per passage."""
    from hea_rag.chunking import ChunkingParams
    from hea_rag.indexer import index_paths

    root = tmp_path_factory.mktemp("long")
    long_paper = {"Title": "Aging of Zr45Ti20Nb15V20", "Year": "2024",
                  "DOI": "10.9999/fake.2024.777", "Abstract": " ".join(LONG_SENTENCES)}
    rows = csv_writer(root / "papers.csv", hea_papers + [long_paper])
    index_paths([str(rows)], root / "index", chunking=ChunkingParams(max_tokens=24))
    return root / "index"


@pytest.fixture(scope="module")
def tiny_generator(tiny_phi_dir):
    from hea_rag.generator import load_generator

    return load_generator(str(tiny_phi_dir), quantize="none")


def _papers(folder):
    from hea_rag.store import IndexReader

    with IndexReader(folder) as reader:
        return {row[0]: row[1] for row in reader.db.execute("SELECT id, doi FROM papers")}


def test_ask_json_cites_real_papers_of_the_index(folder):
    question = "What is the density of MoNbVTa0.5Cr?"  # one the shipped adapter gets right
    result = CliRunner().invoke(
        cli, ["ask", question, "--json", "--model", "smollm2-135m", "--index", str(folder)])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    answer = json.loads(lines[0])
    assert answer["question"] == question and answer["answerable"] is True
    assert answer["answer"] == "9.11 g·cm−3" and answer["answer"] in answer["evidence"]["text"]
    from hea_rag.answer import shipped_adapter

    # the embedded model answers with the adapter shipped for it unless told otherwise
    assert answer["model"] == "smollm2-135m"
    assert answer["adapter"] == str(shipped_adapter("smollm2-135m"))
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
    # the first is about the corpus: answered from its paper, or refused after reading it
    assert first["question"] == QUESTION and first["reason"] in (None, "model", "unsupported")
    assert "MoNbVTa0.5Cr" in first["sources"][0]["text"]
    assert second["question"] == OFF_CORPUS and second["reason"] == "low_score"
    assert second["answerable"] is False and second["sources"] == []
    assert "Traceback" not in done.stderr


def test_given_context_skips_retrieval(tmp_path):
    context = tmp_path / "context.txt"
    context.write_text("Mechanical properties of CoCrNi at cryogenic temperature. "
                       "The CoCrNi alloy reached a yield strength of 1200 MPa at 77 K.")
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


def test_finetune_abstract_prompts_equal_the_prompts_ask_sends(folder):
    """Training looks like inference: at ask's default -k 1 the `abstract` context is the prompt
    ask sends (same passages, same packing, same budget, same string)."""
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
        grounder = Grounder("abstract", generator.count_tokens, budget, retriever)
        for question, answer in [(QUESTION, "3346 MPa"),
                                 ("What is the yield strength of MoNbVTa0.5Cr at 1500 °C?", "2783 MPa")]:
            hits = retriever.search(question, k=settings.top_k)
            ask_prompt, _, _ = answerer.prompt_for(question, None, hits)
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
        far_first = [replace(hits[0], best_dense=0.0), replace(hits[1], best_dense=0.9), hits[2]]
        assert answerer.ask(QUESTION, hits=far_first).reason != "low_score"
        assert len(answerer.ask(QUESTION, hits=far_first).sources) == 1
        all_far = [replace(hit, best_dense=0.0) for hit in hits]
        assert answerer.ask(QUESTION, hits=all_far).reason == "low_score"


def test_prompt_holds_the_cited_passage_of_an_abstract_longer_than_the_budget(
        long_index, tiny_generator):
    """Passages are packed by relevance, so the answer sentence (last in the abstract) goes in
    and what did not fit is the least relevant; the abstract still reads in order."""
    from hea_rag.answer import Answerer, AskSettings
    from hea_rag.retrieve import open_retriever

    settings = AskSettings(top_k=1, context_tokens=64)
    with open_retriever(long_index) as retriever:
        answerer = Answerer(tiny_generator, retriever, settings)
        hits = retriever.search(LONG_QUESTION, k=1)
        assert hits[0].paper.doi == "10.9999/fake.2024.777" and "777 HV" in hits[0].text
        prompt, sources, _ = answerer.prompt_for(LONG_QUESTION, None, hits)
    kept = [sentence for sentence in LONG_SENTENCES if sentence in prompt]
    assert LONG_SENTENCES[-1] in kept and len(kept) < len(LONG_SENTENCES)  # the budget did cut
    assert [prompt.index(s) for s in kept] == sorted(prompt.index(s) for s in kept)
    assert [source.text for source in sources] == [hits[0].text]
    assert all(source.text in prompt for source in sources)


def test_every_cited_passage_is_in_the_prompt_with_three_papers(long_index, tiny_generator):
    from hea_rag.answer import Answerer, AskSettings
    from hea_rag.retrieve import open_retriever

    settings = AskSettings(top_k=3, context_tokens=96)
    with open_retriever(long_index) as retriever:
        answerer = Answerer(tiny_generator, retriever, settings)
        for question in (LONG_QUESTION, "Which alloy reached 2783 MPa?", "hardness of films"):
            prompt, sources, _ = answerer.prompt_for(question, None, retriever.search(question, k=3))
            assert sources, question
            assert all(source.text in prompt for source in sources), question


def test_abstention_reads_the_papers_closest_passage_not_the_shown_one(long_index, tiny_generator,
                                                                       embedder):
    """The shown passage is picked by words and meaning together; the gate reads the cosine
    of the paper's closest passage, as calibrated."""
    from hea_rag.answer import Answerer, AskSettings, gate_score
    from hea_rag.retrieve import open_retriever

    question = "How much can Zr45Ti20Nb15V20 stretch in tension before breaking?"
    with open_retriever(long_index) as retriever:
        hits = retriever.search(question, k=3)
        group = retriever.reader.passage_ids_of([hits[0].paper.id])[hits[0].paper.id]
        cosines = retriever.reader.vectors_of(group) @ embedder.encode([question])[0]
        assert hits[0].best_dense == pytest.approx(float(cosines.max()), abs=1e-5)
        shown, best = max(h.dense for h in hits), gate_score(hits)
        assert best == hits[0].best_dense > shown + 0.02
        settings = AskSettings(max_new_tokens=1, min_score=(shown + best) / 2)
        assert Answerer(tiny_generator, retriever, settings).ask(question).reason != "low_score"
        settings = AskSettings(max_new_tokens=1, min_score=best + 0.01)
        assert Answerer(tiny_generator, retriever, settings).ask(question).reason == "low_score"


def test_ask_tells_its_stages_in_order(long_index, tiny_phi_dir):
    from hea_rag.answer import AskSettings, open_answerer

    stages = []
    with open_answerer(long_index, str(tiny_phi_dir), None, False, "none",
                       AskSettings(max_new_tokens=2), need_retrieval=True,
                       on_stage=stages.append) as answerer:
        answerer.ask(LONG_QUESTION)
    assert stages == [f"loading {tiny_phi_dir}", f"loading the index {long_index} and its embedder",
                      "retrieving passages", "generating the answer"]


def test_ask_writes_nothing_to_stderr_when_it_is_not_a_terminal(long_index, tiny_phi_dir):
    result = CliRunner().invoke(cli, ["ask", LONG_QUESTION, "--model", str(tiny_phi_dir),
                                      "--max-new-tokens", "2", "--index", str(long_index)])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines()[-1].startswith("[1] 10.9999/fake.2024.777\t2024\t")


def test_ask_shows_a_status_line_on_a_terminal_and_clears_it(long_index, tiny_phi_dir):
    """stderr on a real pseudo-terminal: the stages appear there; stdout (a pipe) holds only
    the answer and its source."""
    import os
    import pty
    import select

    leader, follower = pty.openpty()
    command = [sys.executable, "-m", "hea_rag", "ask", LONG_QUESTION, "--model", str(tiny_phi_dir),
               "--max-new-tokens", "2", "--index", str(long_index)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=follower, text=True,
                               env={**os.environ, "TERM": "xterm"})
    os.close(follower)
    shown = b""
    while select.select([leader], [], [], 600)[0]:  # a hung ask fails below instead of hanging
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        shown += chunk
    if process.poll() is None:
        process.kill()
    stdout, _ = process.communicate(timeout=600)
    os.close(leader)
    assert process.returncode == 0
    screen = shown.decode("utf-8", "replace")
    assert f"loading {tiny_phi_dir}" in screen and "retrieving passages" in screen
    assert "Traceback" not in screen
    assert stdout.splitlines()[-1].startswith("[1] 10.9999/fake.2024.777")
