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
    assert "cmp_al7co23.3cr23.3fe23.3ni23.3" in tokens  # atomic percent: 0.3 of 4.3 moles is 7.0


def test_formula_inside_a_sentence_keeps_its_decimal():
    tokens = tokenize("The MoNbVTa0.5Cr alloy was sintered.")
    assert "monbvta0.5cr" in tokens and "ta0.5" in tokens
    assert "monbvta0" not in tokens and "5cr" not in tokens


def test_bracketed_carbide_parses():
    assert parse_formula("(TiZrHfCr)C").moles == dict.fromkeys(["Ti", "Zr", "Hf", "Cr", "C"], 1.0)
    tokens = tokenize("Single-phase (TiZrHfCr)C ceramics")
    assert "(tizrhfcr)c" in tokens
    assert {"ti", "zr", "hf", "cr", "c"} <= set(tokens)
    assert sys_key("(TiZrHfCr)C") == sys_key("C(CrHfZrTi)")


def test_group_total_is_split_among_unnumbered_members_and_added():
    # (NbC)15 is 15 at.% of NbC: Nb 7.5 and C 7.5, the Nb adding to the Nb15 written before it
    moles = parse_formula("Ti40Nb15Mo30(NbC)15").moles
    assert moles == {"Ti": 40.0, "Nb": 22.5, "Mo": 30.0, "C": 7.5}
    tokens = tokenize("Ti40Nb15Mo30(NbC)15")
    assert {"ti40", "nb15", "mo30", "nb", "c"} <= set(tokens)
    assert not {"nb30", "nb22.5", "c15", "c7.5"} & set(tokens)  # parts are amounts as printed
    assert "cmp_c7.5mo30nb22.5ti40" in tokens


def test_group_multiplier_multiplies_written_amounts():
    assert parse_formula("(Ti1.5V)3ZrNb").moles == {"Ti": 4.5, "V": 3.0, "Zr": 1.0, "Nb": 1.0}
    assert {"ti1.5", "v", "zr", "nb"} <= set(tokenize("(Ti1.5V)3ZrNb"))


@pytest.mark.parametrize("text", ["(Al0.3CoCrFeNi)", "[Al0.3CoCrFeNi]", "(Al0.3CoCrFeNi).",
                                  "Al0.3CoCrFeNi,", "((Al0.3CoCrFeNi))", "{Al0.3CoCrFeNi};"])
def test_bracketed_formula_gives_the_bare_formulas_tokens(text):
    assert tokenize(text) == tokenize("Al0.3CoCrFeNi")


def test_brackets_inside_a_formula_stay():
    assert tokenize("((TiZrHfCr)C)")[0] == "(tizrhfcr)c"


@pytest.mark.parametrize("text, written_system", [
    ("AlxCoCrFeNi", "CoCrFeNiAl0.3"),
    ("AlxCoCrFeNi2.1", "Al0.3CoCrFeNi"),
    ("CoCrFeNiTix", "TiCoCrFeNi"),
    ("Ti40Zr20Hf40-xCrx", "CrHfTiZr"),
    ("(MoTaWNb)1-xYx", "YMoTaWNb"),
])
def test_variable_amounts_give_the_system_key(text, written_system):
    assert sys_key(text) == sys_key(written_system)
    # an unknown amount has no composition: a cmp_ key would match nothing or the wrong alloy
    assert not [t for t in tokenize(text) if t.startswith("cmp_")]


def test_variable_amount_parts_are_the_elements_as_printed():
    assert set(tokenize("AlxCoCrFeNi2.1")) == {
        "alxcocrfeni2.1", "al", "alx", "co", "cr", "fe", "ni", "ni2.1", "sys_alcocrfeni"}


def test_variable_suffix_after_a_hyphen_adds_its_element():
    tokens = tokenize("The CoCrFeMnNi-xAl alloys")
    assert {"al", "alx", "cocrfemnni", "co", "mn"} <= set(tokens)
    assert sys_key("CoCrFeMnNi-xAl") == sys_key("Al0.5CoCrFeMnNi")
    assert not [t for t in tokens if t.startswith("cmp_")]


def test_hyphen_joined_formula_piece_is_part_of_the_alloy():
    assert cmp_key("CoCrFeNi-Al0.3") == cmp_key("Al0.3CoCrFeNi")
    assert {"al", "al0.3", "cocrfeni"} <= set(tokenize("CoCrFeNi-Al0.3"))


def test_hyphenated_element_symbols_name_a_system():
    tokens = tokenize("the Nb-Mo-Ta-W system")
    assert sys_key("Nb-Mo-Ta-W") == sys_key("NbMoTaW")
    assert "nbmotaw" in tokens  # as the bare name writes it
    assert not [t for t in tokens if t.startswith("cmp_")]  # a system says nothing of amounts


@pytest.mark.parametrize("text, expected", [
    ("high-entropy", ["high", "entropy", "highentropy"]),
    ("as-cast", ["cast", "ascast"]),
    ("As-cast", ["cast", "ascast"]),
    ("BCC-B2", ["bcc", "b2", "bccb2"]),
    ("Ti-6Al-4V", ["ti", "6", "al", "6al", "4", "v", "4v", "ti6al4v"]),
])
def test_hyphenated_words_that_are_not_formulas(text, expected):
    assert tokenize(text) == expected


def test_group_total_is_shared_and_parts_are_as_printed():
    tokens = set(tokenize("(FeCoNi)86Al7Ti7"))
    assert {"fe", "co", "ni", "al7", "ti7"} <= tokens
    assert not {"fe86", "co86", "ni86"} & tokens  # no other spelling of this alloy says Fe86
    key = cmp_key("(FeCoNi)86Al7Ti7")
    assert key == cmp_key("Fe28.67Co28.67Ni28.67Al7Ti7") == cmp_key("Al7Ti7(CoFeNi)86")
    assert key == "cmp_al7co28.7fe28.7ni28.7ti7"


@pytest.mark.parametrize("one, other", [
    ("Al0.5CoCrFeNi", "CoCrFeNiAl0.5"),
    ("Al0.5CoCrFeNi", "Al11.1Co22.2Cr22.2Fe22.2Ni22.2"),
    ("AlCoCrFeNi", "Al20Co20Cr20Fe20Ni20"),  # molar ratio and at.% of the same alloy
    ("Al0.444CoCrFeNi", "Al10Co22.5Cr22.5Fe22.5Ni22.5"),  # equal at 0.1 at.%
])
def test_composition_key_is_normalized(one, other):
    assert cmp_key(one) == cmp_key(other)


@pytest.mark.parametrize("one, other", [("Al0.3CoCrFeNi", "Al0.25CoCrFeNi"),
                                        ("Al0.4CoCrFeNi", "Al0.45CoCrFeNi")])
def test_close_compositions_keep_distinct_keys(one, other):
    assert cmp_key(one) != cmp_key(other)


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


@pytest.mark.parametrize("text, expected", [
    ("2783 MPa", ["2783", "2783mpa"]),
    ("1500°C", ["1500", "1500°c"]),
    ("(20.45 %)", ["20.45", "20.45%"]),
])
def test_unit_after_a_number_is_not_a_token_of_its_own(text, expected):
    # a bare `mpa` or `%` would match every abstract that quotes any value in that unit
    assert tokenize(text) == expected


def test_unit_without_a_number_stays_a_word():
    assert tokenize("toughness in MPa·m1/2") == ["toughness", "mpa·m1/2"]


def test_possessive_leaves_no_s_token():
    # `s` is the unit of seconds: every possessive would otherwise match every `10 s`
    assert tokenize("NbMoZrTi's hardness") == tokenize("NbMoZrTi hardness")
    assert tokenize("the alloy’s grains") == ["alloy", "grains"]


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


@pytest.mark.parametrize("symbol", ["Be", "In", "As", "At", "No", "He"])
def test_element_symbol_alone_is_searchable(symbol):
    assert tokenize(symbol) == [symbol.lower()]


def test_formula_parts_are_never_stopwords():
    assert {"in", "in0.1", "be", "sys_becocrfeinni"} <= set(tokenize("BeCoCrFeNiIn0.1"))
    assert {"as", "ga"} <= set(tokenize("GaAs"))


@pytest.mark.parametrize("text, expected", [
    # at a sentence's start, before a lowercase word or a number: the English word
    ("In this work, the In content rises.", ["work", "in", "content", "rises"]),
    ("Hardness rose. As shown, In and Sn segregate.",
     ["hardness", "rose", "shown", "in", "sn", "segregate"]),
    ("At 1500 °C no phase forms", ["1500", "1500°c", "phase", "forms"]),
    ("No cracks formed; He bubbles did.", ["cracks", "formed", "he", "bubbles"]),
    # written capitalised elsewhere, or before another capitalised symbol: the element
    ("In, Sn and Bi were added", ["in", "sn", "bi", "added"]),
    ("the effect of Be on ductility", ["effect", "be", "ductility"]),
    # lowercase or all capitals: always the English word
    ("in as at be no", []),
    ("IN AS AT", []),
])
def test_function_words_and_element_symbols(text, expected):
    assert tokenize(text) == expected


TEMPLATE_WORDS = "value measurement measured measure exhibit conditions used tell provide".split()


@pytest.mark.parametrize("word", TEMPLATE_WORDS)
def test_question_template_words_are_not_stopwords(word):
    assert word not in STOPWORDS
    assert tokenize(f"the {word}") == [word]


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
        assert token and not any(c.isspace() for c in token), repr(token)
    # only a capitalised element symbol may give a stopword token, so lowercase text gives none
    assert not set(tokenize(text.lower())) & STOPWORDS


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
