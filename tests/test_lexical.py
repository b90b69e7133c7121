"""Chemistry-aware lexical tokens: formulas in any element order, numbers with units."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hea_rag.lexical import STOPWORDS, parse_formula, tokenize


def sys_key(text: str) -> str:
    (key,) = [t for t in tokenize(text) if t.startswith("sys_")]
    return key


def cmp_key(text: str) -> str:
    (key,) = [t for t in tokenize(text) if t.startswith("cmp_")]
    return key


# --- formulas -----------------------------------------------------------------------------


def test_same_elements_in_another_order_share_the_system_key():
    assert sys_key("MoNbVTa0.5Cr") == sys_key("CrMoNbTaV") == "sys_crmonbtav"
    assert sys_key("NiFeCrCoAl0.3") == sys_key("Al0.3CoCrFeNi")


def test_same_composition_in_another_order_shares_the_composition_key():
    assert cmp_key("MoNbVTa0.5Cr") == cmp_key("CrMoNbTa0.5V")
    # the amount of Ta differs, so the composition keys differ while the system keys agree
    assert cmp_key("MoNbVTa0.5Cr") != cmp_key("CrMoNbTaV")


def test_different_systems_do_not_share_keys():
    assert sys_key("CoCrFeMnNi") != sys_key("CoCrFeNi")
    assert sys_key("Al0.3CoCrFeNi") == sys_key("AlCoCrFeNi2.1")
    assert cmp_key("Al0.3CoCrFeNi") != cmp_key("AlCoCrFeNi2.1")


def test_formula_yields_whole_token_and_element_parts():
    tokens = tokenize("Al0.3CoCrFeNi")
    assert tokens[0] == "al0.3cocrfeni"
    assert {"al", "al0.3", "co", "cr", "fe", "ni"} <= set(tokens)
    assert "sys_alcocrfeni" in tokens
    assert "cmp_al0.3co1cr1fe1ni1" in tokens


def test_formula_inside_a_sentence_keeps_its_decimal():
    tokens = tokenize("The MoNbVTa0.5Cr alloy was sintered.")
    assert "monbvta0.5cr" in tokens and "ta0.5" in tokens
    assert "monbvta0" not in tokens and "5cr" not in tokens


def test_bracketed_carbide_parses():
    assert parse_formula("(TiZrHfCr)C") == {"Ti": None, "Zr": None, "Hf": None, "Cr": None, "C": None}
    tokens = tokenize("Single-phase (TiZrHfCr)C ceramics")
    assert "(tizrhfcr)c" in tokens
    assert {"ti", "zr", "hf", "cr", "c"} <= set(tokens)
    assert sys_key("(TiZrHfCr)C") == sys_key("C(CrHfZrTi)")


def test_group_amounts_are_multiplied_and_added():
    amounts = parse_formula("Ti40Nb15Mo30(NbC)15")
    assert amounts == {"Ti": 40.0, "Nb": 30.0, "Mo": 30.0, "C": 15.0}
    tokens = tokenize("Ti40Nb15Mo30(NbC)15")
    assert {"ti40", "nb30", "mo30", "c15"} <= set(tokens)
    assert "cmp_c15mo30nb30ti40" in tokens


def test_group_multiplier_applies_to_unnumbered_elements():
    assert parse_formula("(Ti1.5V)3ZrNb") == {"Ti": 4.5, "V": 3.0, "Zr": None, "Nb": None}


@pytest.mark.parametrize("word", ["BCC", "FCC", "SPS"])
def test_acronyms_stay_plain_words(word):
    assert parse_formula(word) is None
    assert tokenize(word) == [word.lower()]


@pytest.mark.parametrize("text", ["Al", "Al0.5", "(TiZr", "Ti)Zr(", "Qx2Ab3", "", "0.5", "HEA", "TEM", "NaCl2x", "Ti-Zr"])
def test_not_formulas(text):
    assert parse_formula(text) is None


# --- numbers and units --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1500 °C", {"1500", "1500°c"}),
        ("1500°C", {"1500", "1500°c"}),
        ("1500 ℃", {"1500", "1500°c"}),  # NFKC folds the one-character Celsius sign
        ("2783 MPa", {"2783", "2783mpa"}),
        ("20.45 %", {"20.45", "20.45%"}),
        ("3.9 GPa.", {"3.9", "3.9gpa"}),
        ("0.8 wt.%", {"0.8", "0.8wt.%"}),
    ],
)
def test_numbers_keep_value_and_value_with_unit(text, expected):
    tokens = tokenize(text)
    assert expected <= set(tokens), tokens


def test_spaced_and_attached_units_meet():
    spaced, attached = set(tokenize("at 1500 °C")), set(tokenize("at 1500°C"))
    assert "1500°c" in spaced & attached


def test_unit_is_not_glued_to_a_following_word():
    tokens = tokenize("1500 samples")
    assert "1500" in tokens and "samples" in tokens
    assert not any(t.startswith("1500s") for t in tokens)


def test_decimal_is_not_split():
    tokens = tokenize("a strain of 0.35 and 20.45 %")
    assert "0.35" in tokens and "20.45" in tokens
    assert "35" not in tokens and "45" not in tokens


def test_trailing_punctuation_is_stripped():
    tokens = tokenize("alloys such as Ti62Nb12Mo12Ta12W2, NbMoTaW; and CoCrNi.")
    assert "ti62nb12mo12ta12w2" in tokens
    assert "nbmotaw" in tokens and "cocrni" in tokens
    assert not any(t.endswith((",", ";", ".")) for t in tokens)
    assert {"ti62", "nb12", "w2"} <= set(tokens)


def test_stopwords_dropped_and_case_folded():
    tokens = tokenize("What is the Yield Strength of the alloy?")
    assert tokens == ["yield", "strength", "alloy"]
    assert not set(tokens) & STOPWORDS


def test_hyphenated_words_give_parts_and_joined_form():
    tokens = tokenize("high-entropy")
    assert {"high", "entropy", "highentropy"} <= set(tokens)


# --- robustness ---------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_tokenize_never_raises_and_tokens_have_no_whitespace(text):
    tokens = tokenize(text)
    assert isinstance(tokens, list)
    for token in tokens:
        assert isinstance(token, str)
        assert not any(c.isspace() for c in token), repr(token)
        assert token not in STOPWORDS


chemistry_text = st.lists(
    st.one_of(
        st.sampled_from(["Al", "Co", "Cr", "Fe", "Ni", "Ti", "Nb", "Mo", "Ta", "W", "(", ")", "C"]),
        st.sampled_from(["0.5", "2", "15", " ", ", ", ". ", "°C", " MPa", "%", "-", "BCC"]),
        st.text(alphabet=st.characters(codec="utf-8"), max_size=3),
    ),
    max_size=30,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(chemistry_text)
def test_tokenize_chemistry_like_text_never_raises(text):
    for token in tokenize(text):
        assert not any(c.isspace() for c in token), repr(token)


@settings(max_examples=200, deadline=None)
@given(st.permutations(["Al", "Co", "Cr", "Fe", "Ni", "Ti0.5"]))
def test_system_key_ignores_element_order(order):
    assert sys_key("".join(order)) == "sys_alcocrfeniti"
    assert cmp_key("".join(order)) == cmp_key("AlCoCrFeNiTi0.5")
