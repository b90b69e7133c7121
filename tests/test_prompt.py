"""The trained prompt format, context packing and the answer cut rules, with Phi-2's tokenizer."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hea_rag.finetune import IGNORE, tokenize_example
from hea_rag.prompt import (
    answer_complete,
    build_prompt,
    cut_answer,
    encode_prompt,
    fit_prompt,
    join_passages,
)


def test_prompt_is_exactly_the_trained_format():
    prompt = build_prompt("The alloy was sintered at 1500 °C.", "At what temperature?")
    assert prompt == "The alloy was sintered at 1500 °C.\nQuestion: At what temperature?\nAnswer:"


def test_prompt_token_ids_with_the_phi2_tokenizer(phi_tokenizer):
    prompt = build_prompt("CoCrFeMnNi is FCC.", "Which lattice?")
    ids = phi_tokenizer(prompt)["input_ids"]
    assert phi_tokenizer.decode(ids) == prompt
    # the frame: "\n", "Question", ":", " Which", " lattice", "?", "\n", "Answer", ":"
    tail = phi_tokenizer("\nQuestion: Which lattice?\nAnswer:")["input_ids"]
    assert ids[-len(tail):] == tail
    assert tail[0] == 198 and tail[-2:] == [33706, 25]  # "\n" ... "Answer" ":" in Phi-2's BPE
    assert 50256 not in ids  # no EOS inside a prompt


@pytest.mark.parametrize(
    "generated, answer",
    [
        (" 3346 MPa\nQuestion: next", "3346 MPa"),
        ("\n\n 600 °C\nmore", "600 °C"),  # leading newlines are skipped, not taken as the end
        (" 20.45 % Question: again", "20.45 %"),
        ("  BCC  ", "BCC"),
        ("", ""),
    ],
)
def test_answer_cut_rules(generated, answer):
    assert cut_answer(generated) == answer


def test_answer_complete_waits_past_leading_whitespace():
    assert not answer_complete("\n")
    assert not answer_complete(" 3346")
    assert answer_complete(" 3346 MPa\n")
    assert answer_complete(" 3346 MPa Question:")


def test_join_keeps_one_source_on_one_line():
    passages = [(1, "First part."), (1, "Second part."), (2, "Other paper.")]
    assert join_passages(passages) == "First part. Second part.\nOther paper."


def test_fit_prompt_takes_whole_passages_most_relevant_first(phi_tokenizer):
    count = lambda text: len(phi_tokenizer(text)["input_ids"])  # noqa: E731
    passages = [(1, "Alpha " * 40), (2, "Beta " * 200), (3, "Gamma " * 10)]
    prompt, used = fit_prompt("Q?", passages, count, max_prompt_tokens=80)
    assert used == [passages[0], passages[2]]  # the long one is skipped whole, the short one fits
    assert count(prompt) <= 80
    assert prompt.startswith("Alpha") and "Beta" not in prompt


def test_packing_by_relevance_prints_in_reading_order(phi_tokenizer):
    """The most relevant passage goes in first even when it comes last in the abstract, and the
    passages that fit are printed as the abstract reads."""
    count = lambda text: len(phi_tokenizer(text)["input_ids"])  # noqa: E731
    reading = [(1, "The alloy was cast."), (1, "Then it was rolled " + "again " * 60 + "."),
               (1, "It was aged."), (1, "Its hardness was 777 HV.")]
    by_relevance = [reading[3], reading[1], reading[0], reading[2]]
    prompt, used = fit_prompt("What hardness?", by_relevance, count, 40, print_order=reading)
    assert used == [reading[0], reading[2], reading[3]]  # the long one is skipped whole
    assert prompt == ("The alloy was cast. It was aged. Its hardness was 777 HV.\n"
                      "Question: What hardness?\nAnswer:")
    only_answer = count(build_prompt(reading[3][1], "What hardness?"))
    assert fit_prompt("What hardness?", by_relevance, count, only_answer, reading)[1] == [reading[3]]


def test_encoded_prompt_starts_with_the_tokenizers_bos_and_has_no_eos(bos_tokenizer):
    prompt = build_prompt("CoCrNi reached 1200 MPa at 77 K.", "What strength?")
    text_ids = bos_tokenizer(prompt, add_special_tokens=False)["input_ids"]
    ids = encode_prompt(bos_tokenizer, prompt)
    assert ids == [bos_tokenizer.bos_token_id] + text_ids
    assert ids == bos_tokenizer(prompt)["input_ids"]  # what the tokenizer itself adds
    assert bos_tokenizer.eos_token_id not in ids


def test_encoded_prompt_with_phi2_has_no_special_token(phi_tokenizer):
    prompt = build_prompt("CoCrFeMnNi is FCC.", "Which lattice?")
    plain = phi_tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert encode_prompt(phi_tokenizer, prompt) == plain


def test_training_ids_are_the_inference_prompt_then_answer_and_eos(bos_tokenizer):
    """Training sees exactly the ids `ask` feeds (BOS included), then the answer and EOS."""
    prompt = build_prompt("CoCrNi reached 1200 MPa at 77 K.", "What strength?")
    answer_ids = bos_tokenizer(" 1200 MPa", add_special_tokens=False)["input_ids"]
    prompt_ids = encode_prompt(bos_tokenizer, prompt)
    row = tokenize_example(bos_tokenizer, prompt, "1200 MPa", max_length=512)
    assert row["input_ids"] == prompt_ids + answer_ids + [bos_tokenizer.eos_token_id]
    assert row["labels"] == [IGNORE] * len(prompt_ids) + answer_ids + [bos_tokenizer.eos_token_id]
    assert row["attention_mask"] == [1] * len(row["input_ids"])


def test_truncated_training_prompt_keeps_its_bos_and_answer(bos_tokenizer):
    prompt = build_prompt("CoCrNi reached 1200 MPa at 77 K. " * 10, "What strength?")
    row = tokenize_example(bos_tokenizer, prompt, "1200 MPa", max_length=24)
    full = tokenize_example(bos_tokenizer, prompt, "1200 MPa", max_length=10_000)
    assert len(row["input_ids"]) == 24
    assert row["input_ids"][0] == bos_tokenizer.bos_token_id
    assert row["input_ids"][1:] == full["input_ids"][len(full["input_ids"]) - 23:]


@settings(max_examples=60, deadline=None)
@given(
    texts=st.lists(st.text(alphabet="abcdefgh XYZ0123.,°%", min_size=1, max_size=300), max_size=8),
    budget=st.integers(min_value=10, max_value=400),
)
def test_packed_prompt_never_exceeds_the_budget(phi_tokenizer, texts, budget):
    count = lambda text: len(phi_tokenizer(text)["input_ids"])  # noqa: E731
    passages = [(i // 2, t) for i, t in enumerate(texts)]
    prompt, used = fit_prompt("What is it?", passages, count, budget)
    assert used == [] or count(prompt) <= budget
    assert all(p in passages for p in used)
