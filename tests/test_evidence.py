"""Trust gates of `ask`: does a paper speak of what the question asks (`match_question`), and
does the text the model read hold what it answered (`find_support`). The abstracts below are
hand-written for these tests."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from hea_rag.evidence import (
    find_support,
    match_question,
    normalize_evidence,
    numbers_in,
    question_terms,
)
from hea_rag.properties import mentions, properties_in

DATA = Path(__file__).parent / "data"

# a hardness study of one alloy, written with its Al last
AL03_ABSTRACT = (
    "The microstructure and hardness of an as-cast CoCrFeNiAl0.3 high-entropy alloy were studied. "
    "After homogenization at 1200 °C for 24 h the alloy kept a single FCC solid solution. "
    "Cold rolling raised its Vickers hardness from 152 HV to 346 HV, and the yield stress "
    "reached 1,050 MPa. Fine annealing twins formed during recrystallization."
)

# the same group composition written out element by element
FECONI_ABSTRACT = (
    "A Fe28.67Co28.67Ni28.67Al7Ti7 alloy strengthened by coherent L12 precipitates was aged "
    "at 800 °C. Its Vickers hardness rose to 412 HV and the tensile elongation stayed near 30%."
)


# --- question -> paper: alloys ------------------------------------------------------------


def test_alloy_written_in_another_element_order_matches():
    terms = question_terms("What is the Vickers hardness of Al0.3CoCrFeNi after cold rolling?")
    assert terms.alloys == {"sys_alcocrfeni": "Al0.3CoCrFeNi"}
    match = match_question("What is the Vickers hardness of Al0.3CoCrFeNi after cold rolling?",
                           AL03_ABSTRACT)
    assert match.ok and match.missing == ()


def test_group_formula_matches_the_formula_written_out():
    question = "What hardness does (FeCoNi)86Al7Ti7 reach after aging?"
    assert question_terms(question).alloys == {"sys_alcofeniti": "(FeCoNi)86Al7Ti7"}
    assert match_question(question, FECONI_ABSTRACT).ok
    # and the other way round
    assert match_question("What hardness does Fe28.67Co28.67Ni28.67Al7Ti7 reach?",
                          "Aging hardened the (FeCoNi)86Al7Ti7 alloy to 412 HV.").ok


def test_alloy_absent_from_the_paper_is_refused_and_named():
    match = match_question("What is the hardness of the MoNbTaW alloy?", AL03_ABSTRACT)
    assert not match.ok
    assert match.missing == ("the alloy MoNbTaW",)
    assert match.describe() == "the alloy MoNbTaW"


def test_group_formula_absent_is_named_with_its_brackets():
    match = match_question("What is the hardness of (FeCoNi)86Al7Ti7?", AL03_ABSTRACT)
    assert match.missing == ("the alloy (FeCoNi)86Al7Ti7",)
    match = match_question("What is the hardness of the (MoNbTaW) alloy?", AL03_ABSTRACT)
    assert match.missing == ("the alloy MoNbTaW",)


def test_same_elements_but_a_missing_element_do_not_match():
    # CoCrFeNi is a subsystem of CoCrFeNiAl0.3, not the same alloy
    match = match_question("What is the hardness of CoCrFeNi?", AL03_ABSTRACT)
    assert match.missing == ("the alloy CoCrFeNi",)


def test_a_single_element_is_no_alloy():
    assert question_terms("How does Al change the hardness?").alloys == {}


# --- question -> paper: properties --------------------------------------------------------


@pytest.mark.parametrize("question, name", [
    ("What Néel temperature has been measured for CoCrFeNiAl0.3?", "Néel temperature"),
    ("What magnetostriction does CoCrFeNiAl0.3 show?", "magnetostriction"),
    ("What is the Curie temperature of CoCrFeNiAl0.3?", "Curie temperature"),
])
def test_property_absent_from_a_hardness_paper_is_refused(question, name):
    assert name in properties_in(question)
    match = match_question(question, AL03_ABSTRACT)
    assert not match.ok
    assert match.missing == (f"the {name}",)


def test_property_reported_by_a_synonym_matches():
    question = "What is the yield strength of CoCrFeNiAl0.3?"
    assert "yield strength" in properties_in(question)
    assert match_question(question, AL03_ABSTRACT).ok  # the paper says "yield stress"
    sigma = "The CoCrFeNiAl0.3 alloy reached σ0.2 = 1050 MPa after rolling."
    assert mentions("yield strength", sigma)
    assert match_question(question, sigma).ok


def test_property_without_any_of_its_words_is_refused():
    text = "The CoCrFeNiAl0.3 alloy has an ultimate tensile strength of 1200 MPa."
    match = match_question("What is the yield strength of CoCrFeNiAl0.3?", text)
    assert match.missing == ("the yield strength",)


def test_density_is_not_reported_by_dislocation_or_current_density():
    assert properties_in("What is the density of CoCrFeNiAl0.3?") == ["density"]
    assert not mentions("density", "Rolling raised the dislocation density of the alloy.")
    assert not mentions("density", "The corrosion current density was 0.2 μA/cm2.")
    assert mentions("density", "Its density is only 5.6 g/cm3.")


def test_neel_temperature_is_reported_by_antiferromagnetic_ordering():
    assert mentions("Néel temperature", "Antiferromagnetic ordering sets in below 80 K.")
    assert not mentions("Néel temperature", AL03_ABSTRACT)


# --- question -> paper: condition numbers -------------------------------------------------


def test_condition_number_absent_is_refused():
    question = "What phases does CoCrFeNiAl0.3 hold after annealing at 1500 °C?"
    assert question_terms(question).numbers == ("1500",)
    match = match_question(question, AL03_ABSTRACT)
    assert match.missing == ("the value 1500",)
    assert match_question("What phases does CoCrFeNiAl0.3 hold after annealing at 1200°C?",
                          AL03_ABSTRACT).ok


def test_numbers_inside_formulas_and_symbols_are_no_conditions():
    assert question_terms("What is the hardness of Al0.3CoCrFeNi?").numbers == ()
    assert question_terms("What is the σ0.2 of CoCrNi at 77 K?").numbers == ("77",)
    assert question_terms("What is the HV0.5 hardness of NbMoTaW?").numbers == ()
    # 86 is no value the paper must print: it belongs to the group formula
    question = "What hardness does (FeCoNi)86Al7Ti7 reach after aging at 800 °C?"
    assert question_terms(question).numbers == ("800",)
    assert match_question(question, FECONI_ABSTRACT).ok


def test_question_that_pins_nothing_down_passes():
    terms = question_terms("How do high-entropy alloys deform?")
    assert terms.empty
    assert match_question("How do high-entropy alloys deform?", AL03_ABSTRACT).ok


# --- numbers and normalisation ------------------------------------------------------------


def test_numbers_are_values():
    assert numbers_in("x = 0.50 and 0.5") == {Decimal("0.5")}
    assert numbers_in("a yield stress of 1,200 MPa") == {Decimal("1200")}
    assert numbers_in("15.92 % and 15.92%") == {Decimal("15.92")}
    assert Decimal("0.3") in numbers_in("Al0.3CoCrFeNi")
    assert numbers_in("3346 HV") == {Decimal("3346")}


def test_normalize_evidence_unifies_typography():
    assert normalize_evidence("15.92 %") == "15.92%"
    assert normalize_evidence("∼500") == "~500"
    assert normalize_evidence("−20\u2009°C") == "-20 °C"
    assert normalize_evidence("1,200\u00a0MPa") == "1200 MPa"
    # a list of numbers is not a thousands separator
    assert normalize_evidence("1,2 and 10,20") == "1,2 and 10,20"


# --- answer -> evidence ---------------------------------------------------------------------


def assert_span(support, source: str, number: str) -> None:
    assert support.supported
    span = support.span
    assert source[span.start:span.end] == span.text
    assert number in span.text


def test_percent_with_and_without_a_space():
    source = "Aging was done at 700 °C. The elongation to fracture was 15.92 % in air."
    support = find_support("The elongation to fracture is 15.92%.", source)
    assert_span(support, source, "15.92 %")
    assert support.span.text.startswith("The elongation")


def test_tilde_variants():
    source = "The alloy was cold rolled. Its yield strength was ~500 MPa."
    assert_span(find_support("∼500 MPa", source), source, "~500")
    source = "The alloy was cold rolled. Its yield strength was ∼500 MPa."
    assert_span(find_support("~500 MPa", source), source, "∼500")


def test_unicode_minus_and_thin_space():
    source = "Charpy tests were run. The impact energy stayed high down to -20 °C."
    assert_span(find_support("−20 °C", source), source, "-20 °C")
    source = "Charpy tests were run. The impact energy stayed high down to −20\u2009°C."
    assert_span(find_support("-20 °C", source), source, "−20\u2009°C")


def test_thousands_comma():
    source = "The yield stress reached 1200 MPa."
    assert_span(find_support("The yield stress is 1,200 MPa.", source), source, "1200")
    support = find_support("The yield stress is 1050 MPa.", AL03_ABSTRACT)
    assert_span(support, AL03_ABSTRACT, "1,050 MPa")


def test_absent_number_is_unsupported_even_when_the_words_match():
    support = find_support("The yield stress reached 1100 MPa.", AL03_ABSTRACT)
    assert not support.supported
    assert support.missing == ("1100",)
    assert "yield stress" in support.span.text  # the nearest sentence is still shown


def test_number_that_is_only_part_of_a_larger_number_is_unsupported():
    support = find_support("346 HV", "The nitrided layer reached 3346 HV.")
    assert not support.supported and support.missing == ("346",)
    assert not find_support("346 HV", "The hardness reached 346.5 HV.").supported
    assert find_support("346 HV", "The hardness reached 346 HV.").supported


def test_missing_number_is_printed_as_written():
    support = find_support("Al20Co20Cr20Fe20Ni20", "The equiatomic AlCoCrFeNi alloy was cast.")
    assert not support.supported
    assert support.missing == ("20",)  # not Decimal's "2E+1"


def test_formula_answer_held_by_another_spelling_of_the_composition():
    support = find_support("The alloy is Al0.3CoCrFeNi.", AL03_ABSTRACT)
    assert_span(support, AL03_ABSTRACT, "CoCrFeNiAl0.3")
    support = find_support("Al0.5CoCrFeNi", AL03_ABSTRACT)
    assert not support.supported
    assert set(support.missing) == {"0.5", "Al0.5CoCrFeNi"}


def test_phase_answer():
    assert_span(find_support("FCC", AL03_ABSTRACT), AL03_ABSTRACT, "FCC")
    assert find_support("FCC", "A single fcc solid solution formed.").supported
    support = find_support("BCC", AL03_ABSTRACT)
    assert not support.supported and support.missing == ("BCC",)


def test_short_answer_needs_every_key_word_a_long_one_most():
    assert find_support("Fine annealing twins formed.", AL03_ABSTRACT).supported
    short = find_support("Fine annealing twins formed during aging.", AL03_ABSTRACT)
    assert not short.supported  # one absent word of six is enough to refuse a short answer
    assert short.missing == ("aging",)
    source = ("The alloy shows a single FCC solid solution with fine annealing twins, strong work "
              "hardening, high Vickers hardness, and good ductility.")
    explanation = ("The alloy shows a single FCC solid solution with fine annealing twins, strong "
                   "work hardening, high Vickers hardness, good ductility and excellent "
                   "recrystallization behaviour overall")
    assert find_support(explanation, source).supported  # 4 of 21 key words absent
    unrelated = ("Oxidation in air formed a dense alumina scale that protected the alloy, while "
                 "chromia spalled after long exposure and nitrides grew beneath the scale")
    assert not find_support(unrelated, source).supported


def test_answer_over_two_adjacent_sentences_but_not_two_distant_ones():
    source = ("The CoCrNi alloy was tested in tension. Its yield stress was 1,050 MPa. "
              "The tests were run at 77 K in liquid nitrogen. Twinning was extensive. "
              "Grains were 20 μm wide.")
    support = find_support("1050 MPa at 77 K", source)
    assert_span(support, source, "1,050 MPa")
    assert "77 K" in support.span.text
    assert support.span.text == ("Its yield stress was 1,050 MPa. "
                                 "The tests were run at 77 K in liquid nitrogen.")
    assert not find_support("1050 MPa for 20 μm grains", source).supported


def test_offsets_point_into_the_original_text():
    source = ("Résumé — α′ and σ phases were absent.\u2009 The hardness of the "
              "Al0.3CoCrFeNi alloy was 346\u00a0HV. The end.")
    support = find_support("346 HV", source)
    assert_span(support, source, "346")
    assert support.span.start == source.index("The hardness")
    assert support.span.end == source.index(" The end.")


def test_empty_answer_is_unsupported():
    assert find_support("", AL03_ABSTRACT).missing == ("an answer",)
    assert not find_support("the", AL03_ABSTRACT).supported


# --- in-domain questions the corpus cannot answer ---------------------------------------------


def load_unanswerable() -> list[dict]:
    lines = (DATA / "in_domain_unanswerable.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_in_domain_unanswerable_questions_pin_something_down():
    items = load_unanswerable()
    assert 12 <= len(items) <= 20
    for item in items:
        assert item["question"].endswith("?") and item["why"]
        terms = question_terms(item["question"])
        assert not terms.empty, item["question"]
        # each names an alloy or a property the corpus is checked against
        assert terms.alloys or terms.properties, item["question"]


def test_a_minus_sign_is_part_of_the_number_but_a_range_dash_is_not():
    from hea_rag.evidence import find_support, match_question

    text = "The CoCrNi alloy was tested at −196 °C, where its toughness rose over the 600-800 K data."
    assert find_support("-196 °C", text).supported
    assert not find_support("196 °C", text).supported
    assert find_support("800 K", text).supported
    question = "What toughness does CoCrNi reach at -196 °C?"
    assert match_question(question, text).ok
    assert not match_question(question, text.replace("−196", "196")).ok


def test_words_repeated_from_the_question_need_no_support_but_numbers_do():
    from hea_rag.evidence import find_support

    source = "The TiZrNbHf alloy was hardened to 410 HV at 600 °C. It stayed single-phase BCC."
    question = "What is the measurement temperature for the hardness of TiZrNbHf?"
    answer = "The measurement temperature for the hardness of TiZrNbHf was 600 °C."
    assert not find_support(answer, source).supported  # "measurement" is not in the text
    assert find_support(answer, source, question).supported
    assert not find_support(answer.replace("600", "700"), source, question).supported
    assert find_support("BCC", source, "Is it BCC or FCC?").supported
    assert not find_support("FCC", source, "Is it BCC or FCC?").supported


def test_a_value_printed_beside_another_property_does_not_support_the_answer():
    from hea_rag.evidence import find_support

    source = ("The MoNbTaW alloy was sintered at 1500 °C. Its compressive strength reached 2100 MPa. "
              "The specific yield strength was 215.3 kPa·m3·kg−1 (215.3 MPa at unit density).")
    question = "What is the compressive strength of MoNbTaW?"
    assert find_support("2100 MPa", source, question).supported
    wrong = find_support("215.3 kPa·m3·kg−1", source, question)
    assert not wrong.supported and "specific units" in wrong.missing[0]
    mpa_beside_specific = find_support("215.3 MPa", source, question)  # no such compressive value
    assert not mpa_beside_specific.supported
    assert find_support("215.3 kPa·m3·kg−1", source,
                        "What specific yield strength does MoNbTaW reach?").supported


def test_a_condition_asked_of_a_given_value_may_stand_sentences_away_from_the_property():
    from hea_rag.evidence import find_support

    source = ("Tensile tests were carried out at 25 °C. The alloys were then cold rolled. "
              "The TN20 alloy showed an ultimate strength of 3127 MPa.")
    question = "At what temperature is the ultimate strength of 3127 MPa in TN20 measured?"
    assert find_support("25 °C", source, question).supported
    assert not find_support("26 °C", source, question).supported
    assert not find_support("3127 MPa", source, "What is the yield strength of TN20?").supported


def test_an_answer_in_units_of_another_property_is_not_supported():
    from hea_rag.evidence import find_support

    source = ("At 1500 °C the yield strength of MoNbTaW was 2783 MPa and its specific yield "
              "strength 295.28 kPa·m3·kg−1; the density was 9.11 g·cm−3 and the elongation 18 %.")
    asked = "What is the yield strength of MoNbTaW at 1500 °C?"
    assert find_support("2783 MPa", source, asked).supported
    assert not find_support("295.28 kPa·m3·kg−1", source, asked).supported
    specific = "What specific yield strength does MoNbTaW reach?"
    assert find_support("295.28 kPa·m3·kg−1", source, specific).supported
    assert not find_support("2783 MPa", source, specific).supported
    assert not find_support("18 %", source, "What is the density of MoNbTaW?").supported
    assert find_support("9.11 g·cm−3", source, "What is the density of MoNbTaW?").supported
