"""The adapter shipped for the embedded model: used by default, small, described, and trained on
nothing of dev_qa `heldout`."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hea_rag.answer import default_adapter, shipped_adapter
from hea_rag.prompt import PROMPT_TEMPLATE, REFUSAL

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = shipped_adapter("smollm2-135m")


def test_shipped_adapter_is_small_and_its_card_says_how_it_was_made():
    files = [path for path in SHIPPED.rglob("*") if path.is_file()]
    assert sum(path.stat().st_size for path in files) < 10 * 1024 * 1024
    metadata = json.loads((SHIPPED / "hea_rag_adapter.json").read_text())
    assert metadata["base_model"] == "smollm2-135m"
    assert metadata["prompt_format"] == PROMPT_TEMPLATE and metadata["refusal"] == REFUSAL
    assert metadata["hyperparameters"]["negative_rate"] > 0
    assert {"torch", "transformers", "peft"} <= set(metadata["versions"])
    card = (SHIPPED / "README.md").read_text()
    assert "scripts/build_default_adapter.sh" in card and "bench_abstention" in card


def test_embedded_model_uses_the_shipped_adapter_unless_the_index_has_one(tmp_path):
    assert default_adapter(tmp_path, "smollm2-135m") == SHIPPED
    assert default_adapter(tmp_path, "microsoft/phi-2") is None
    own = tmp_path / "adapter"
    own.mkdir()
    (own / "adapter_config.json").write_text("{}")
    assert default_adapter(tmp_path, "smollm2-135m") == own


def test_ask_loads_the_shipped_adapter_and_no_adapter_turns_it_off(tmp_path):
    from hea_rag.cli import cli

    question = "What is the yield strength of CoCrNi at 77 K?"
    # a title and an abstract sentence, as the adapter was trained on (given one bare sentence,
    # the adapter trained with synth pairs answers with its refusal)
    context = ("Mechanical properties of CoCrNi at cryogenic temperature. "
               "The CoCrNi alloy reached a yield strength of 1200 MPa at 77 K.")
    base = ["ask", question, "--context", context, "--json", "--model", "smollm2-135m",
            "--index", str(tmp_path / "none")]
    with_adapter = json.loads(CliRunner().invoke(cli, base).stdout)
    without = json.loads(CliRunner().invoke(cli, base + ["--no-adapter"]).stdout)
    assert with_adapter["adapter"] == str(SHIPPED) and without["adapter"] is None
    assert with_adapter["answerable"] and with_adapter["answer"] == "1200 MPa"
    assert with_adapter["evidence"]["text"] == context.split(". ", 1)[1]


@pytest.fixture(scope="module")
def without_heldout():
    spec = importlib.util.spec_from_file_location("without_heldout",
                                                  ROOT / "scripts" / "without_heldout.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_training_inputs_hold_nothing_of_heldout(shared_dir, tmp_path, without_heldout):
    """The recipe's corpus lacks every heldout abstract and its QA file every heldout answer."""
    from hea_rag.grounding import _contains

    without_heldout.main(shared_dir, tmp_path)
    held, questions = without_heldout.heldout(shared_dir)
    import csv

    with open(tmp_path / "corpus.csv", encoding="utf-8", newline="") as handle:
        kept = [row["Abstract"] for row in csv.DictReader(handle)]
    assert kept and not {without_heldout.abstract_sha1(a) for a in kept} & held
    source = shared_dir / "data" / "hea_qa" / "Scopus_Abstracts_Dataset.csv"
    with open(source, encoding="utf-8", newline="") as handle:
        held_abstracts = [row["Abstract"] for row in csv.DictReader(handle)
                          if without_heldout.abstract_sha1(row["Abstract"]) in held]
    pairs = [json.loads(line) for line in (tmp_path / "upstream_qa.jsonl").read_text().splitlines()]
    assert len(pairs) > 1000
    for pair in pairs:
        assert pair["question"] not in questions
        assert not any(_contains(abstract, pair["answer"]) for abstract in held_abstracts)
