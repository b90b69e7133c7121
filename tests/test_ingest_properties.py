"""Property tests: no input, however broken, makes a reader raise anything but InputError."""

from __future__ import annotations

import io
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hea_rag.errors import InputError
from hea_rag.ingest import READERS, Failed, Paper, Skipped, read_path
from hea_rag.ingest.clean import clean_abstract
from hea_rag.ingest.doi import normalize_doi

SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

VALID = {
    ".csv": (
        'Authors,Title,Year,DOI,Link,Abstract\n"Li X.; Wang Y.",CoCrNi twins,2024,,'
        '"https://www.scopus.com/r?eid=1&doi=10.1016%2fj.x.2024.1&p=40","CoCrNi formed twins at 77 K. '
        '© 2024 Elsevier B.V."\n'
    ),
    ".tsv": "Abstract\tDOI\nNbMoTaW kept BCC to 1400 K.\t10.1000/abc\n",
    ".json": '[{"abstract": "AlCoCrFeNi aged at 900 \\u00b0C.", "doi": "doi:10.1000/X", "year": 2021}]',
    ".jsonl": '{"abstract": "CoCrFeMnNi at 5 \\u00b5m."}\n{"Summary": "TiZrNbTa by L-PBF.", "DOI": ""}\n',
    ".bib": (
        '@article{li2024, title = {{High}-entropy alloys}, author = {Li, X. and Wang, Y.}, '
        'year = 2024, doi = {10.1016/J.X.1},\n abstract = {Al$_{0.5}$CoCrFeNi at 900~$^\\circ$C, 12% twins.}}\n'
    ),
    ".ris": "TY  - JOUR\nTI  - Oxidation\nAU  - Wang, Y.\nAB  - AlCrMoNbTa formed\n  CrTaO4.\nDO  - 10.1/x\nER  - \n",
    ".txt": "# Eutectic HEAs\n\nThe lamellae coarsened to 1.2 μm.\n",
    ".md": "Short title\n\nBody © 2024 Elsevier Ltd\n",
}

# Characters that matter to some reader's syntax, plus chemistry and Unicode oddities.
ALPHABET = st.sampled_from(
    list('{}[]()"\',;:\t\n\r@%$\\#&=~-_^ ©°μÅ−\u00a0\u200b\ud800\x00aAT1Y0.9/<>')
    + ["TY  - ", "ER  - ", "AB  - ", "@article{", "abstract = ", "doi=", "\xff", "𝛼", "10.1000/"]
)
TEXT = st.lists(ALPHABET, max_size=40).map("".join)


@st.composite
def mutated(draw, original: str) -> str:
    """`original` with a few random insertions, deletions and replacements."""
    text = original
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(text)))
        span = draw(st.integers(0, 8))
        text = text[:at] + draw(TEXT) + text[at + span :]
    return text


def check(records: list) -> None:
    for record in records:
        assert isinstance(record, (Paper, Skipped, Failed))
        if isinstance(record, Paper):
            assert record.abstract and record.abstract == record.abstract.strip()
            record.abstract.encode("utf-8")  # text_key and the index need encodable text
            assert record.doi is None or normalize_doi(record.doi) == record.doi
            assert record.year is None or 1000 <= record.year <= 9999
        else:
            assert record.where and record.reason


def read_all(path: str) -> list:
    try:
        return list(read_path(path))
    except InputError:
        return []


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("props")


@pytest.mark.parametrize("ext", sorted(READERS))
@SETTINGS
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes(workdir, ext, data):
    path = workdir / f"input{ext}"
    path.write_bytes(data)
    check(read_all(str(path)))


@pytest.mark.parametrize("ext", sorted(VALID))
@SETTINGS
@given(data=st.data())
def test_mutated_valid_input(workdir, ext, data):
    text = data.draw(mutated(VALID[ext]))
    path = workdir / f"mutated{ext}"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    check(read_all(str(path)))


@SETTINGS
@given(data=st.data())
def test_mutated_stdin(monkeypatch, data):
    text = data.draw(mutated(data.draw(st.sampled_from(sorted(VALID.values())))))
    stream = io.TextIOWrapper(io.BytesIO(text.encode("utf-8", "surrogatepass")), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stream)
    check(read_all("-"))


def test_valid_samples_give_papers(workdir):
    for ext, text in VALID.items():
        path = workdir / f"valid{ext}"
        path.write_text(text, encoding="utf-8")
        records = list(read_path(str(path)))
        assert records and all(isinstance(r, Paper) for r in records), (ext, records)


@SETTINGS
@given(text=st.text(alphabet=st.sampled_from(list(" .;©°μµÅ℃\u00a0\u200b\t\nab1Copyright")), max_size=60))
def test_clean_abstract_is_idempotent(text):
    once = clean_abstract(text)
    assert clean_abstract(once) == once


@SETTINGS
@given(raw=st.text(max_size=60))
def test_normalize_doi_is_idempotent(raw):
    doi = normalize_doi(raw)
    assert doi is None or normalize_doi(doi) == doi
