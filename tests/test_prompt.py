"""The trained prompt format, context packing and the answer cut rules, with Phi-2's tokenizer."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hea_rag.prompt import (
    answer_complete,
    build_prompt,
    cut_answer,
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
