"""Input readers: each format, DOI and abstract cleanup, skips and failures, stdin, directories."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import pytest

from hea_rag.errors import InputError
from hea_rag.ingest import Failed, Paper, Skipped, read_path, sniff_format
from hea_rag.ingest.clean import clean_abstract
from hea_rag.ingest.doi import doi_from_link, normalize_doi
from hea_rag.ingest.records import MAX_ABSTRACT_CHARS

SCOPUS_LINK = (
    "https://www.scopus.com/inward/record.uri?eid=2-s2.0-85000000001"
    "&doi=10.1016%2fj.jallcom.2024.175310&partnerID=40&md5=0123456789abcdef"
)
ABSTRACT_A = (
    "The AlCoCrFeNi2.1 eutectic high-entropy alloy was annealed at 900 °C for 2 h; "
    "the lamellae coarsened to 1.2 μm and the yield strength reached 1050 MPa."
)
ABSTRACT_B = "Adding 2 at.% Ti to CoCrFeMnNi raised its hardness from 160 HV to 210 HV after aging."


def write(tmp_path: Path, name: str, text: str | bytes) -> str:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


def papers(records) -> list[Paper]:
    return [r for r in records if isinstance(r, Paper)]


# --- DOI ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("10.1016/j.jallcom.2024.175310", "10.1016/j.jallcom.2024.175310"),
        ("  https://doi.org/10.1016/J.JALLCOM.2024.175310 ", "10.1016/j.jallcom.2024.175310"),
        ("http://dx.doi.org/10.1038/s43246-024-00452-0", "10.1038/s43246-024-00452-0"),
        ("doi:10.1002/adem.202301234", "10.1002/adem.202301234"),
        ("DOI: 10.1002/ADEM.202301234", "10.1002/adem.202301234"),
        ("10.1016%2fj.actamat.2023.119000", "10.1016/j.actamat.2023.119000"),
        ("", None),
        (None, None),
        ("not a doi", None),
        ("10.12/too-short-registrant", None),
        ("10.1016/", None),
        ("10.1016/has space", None),
    ],
)
def test_normalize_doi(raw, expected):
    assert normalize_doi(raw) == expected


@pytest.mark.parametrize(
    "link, expected",
    [
        (SCOPUS_LINK, "10.1016/j.jallcom.2024.175310"),
        ("https://www.scopus.com/inward/record.uri?eid=2-s2.0-85161064551&partnerID=40", None),
        ("https://doi.org/10.1016/j.msea.2024.146000", "10.1016/j.msea.2024.146000"),
        ("http://[broken-ipv6/?doi=10.1016/x", None),
        ("", None),
    ],
)
def test_doi_from_link(link, expected):
    assert doi_from_link(link) == expected


# --- abstract cleanup --------------------------------------------------------------------


@pytest.mark.parametrize(
    "trailer",
    [
        "© 2024 Elsevier B.V. All rights reserved.",
        "© 2023 The Author(s). Published by Elsevier Ltd. This is an open access article.",
        "Copyright © 2024, Some Institute for Metals. Published by Someone.",
        "© The Author(s), under exclusive licence to Springer Nature 2022. Springer Nature holds rights.",
        "© 2024",
    ],
)
def test_clean_abstract_drops_copyright_trailer(trailer):
    assert clean_abstract(f"{ABSTRACT_A} {trailer}") == ABSTRACT_A


def test_clean_abstract_keeps_science_after_a_joined_notice():
    text = f"{ABSTRACT_B} © The Author(s) 2024.; {ABSTRACT_A} © The Author(s) 2024."
    assert clean_abstract(text) == f"{ABSTRACT_B} © The Author(s) 2024.; {ABSTRACT_A}"


def test_clean_abstract_keeps_chemistry_and_folds_lookalikes():
    raw = "Heated to 1200\u00a0℃, grains of 5 µm, a = 3.1 Å, ΔH = −5 kJ/mol, 10⁻³ s⁻¹, {11¯0}<11¯2>"
    assert clean_abstract(raw) == (
        "Heated to 1200 °C, grains of 5 μm, a = 3.1 Å, ΔH = −5 kJ/mol, 10⁻³ s⁻¹, {11¯0}<11¯2>"
    )


def test_clean_abstract_whitespace_markup_and_invisibles():
    raw = "  <jats:p>The Al<sub>0.3</sub>CoCrFeNi\u200b alloy\n\t is  FCC.</jats:p> "
    assert clean_abstract(raw) == "The Al0.3CoCrFeNi alloy is FCC."


@pytest.mark.parametrize("raw", ["", "   ", "[No abstract available]", "N/A", "© 2024 Elsevier Ltd"])
def test_clean_abstract_placeholders_are_empty(raw):
    assert clean_abstract(raw) == ""


def test_clean_abstract_replaces_lone_surrogates():
    assert clean_abstract("bad \ud800 char").encode("utf-8")


# --- CSV ---------------------------------------------------------------------------------


def scopus_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    columns = ["Authors", "Title", "Year", "Source title", "DOI", "Link", "Abstract"]
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c, "") for c in columns})
    return out.getvalue()


def test_csv_scopus_export(tmp_path):
    text = scopus_csv(
        [
            {
                "Authors": "Li X.; Wang Y.",
                "Title": "Eutectic HEA coarsening",
                "Year": "2024",
                "Source title": "Journal of Alloys and Compounds",
                "DOI": "10.1016/J.JALLOY.2024.1",
                "Abstract": ABSTRACT_A + " © 2024 Elsevier B.V.",
            },
            {"Link": SCOPUS_LINK, "Abstract": ABSTRACT_B + "\nsecond line"},
            {"Abstract": "[No abstract available]", "Title": "Empty one"},
        ]
    )
    path = write(tmp_path, "scopus.csv", "\ufeff" + text)
    records = list(read_path(path))
    first, second, third = records
    assert first == Paper(
        abstract=ABSTRACT_A,
        doi="10.1016/j.jalloy.2024.1",
        title="Eutectic HEA coarsening",
        authors="Li X.; Wang Y.",
        year=2024,
        source="Journal of Alloys and Compounds",
        origin=f"{path} row 2",
    )
    assert second.doi == "10.1016/j.jallcom.2024.175310"  # recovered from Link
    assert second.abstract == ABSTRACT_B + " second line"
    assert second.origin == f"{path} row 3"  # a multi-line cell is still one row
    assert third == Skipped(f"{path} row 4", "empty abstract")


def test_tsv_and_case_insensitive_columns(tmp_path):
    text = "SUMMARY\tpublication year\tAUTHOR\n" + f"{ABSTRACT_B}\tPublished 2023-05\tZhang Q.\n"
    (paper,) = read_path(write(tmp_path, "table.tsv", text))
    assert (paper.abstract, paper.year, paper.authors) == (ABSTRACT_B, 2023, "Zhang Q.")


def test_semicolon_csv_is_sniffed(tmp_path):
    text = f'Title;Abstract\n"CoCrNi, twins";"{ABSTRACT_A}"\n'
    (paper,) = read_path(write(tmp_path, "excel.csv", text))
    assert (paper.title, paper.abstract) == ("CoCrNi, twins", ABSTRACT_A)


def test_csv_without_abstract_column_is_one_skip(tmp_path):
    path = write(tmp_path, "names.csv", "Name,Composition\nCantor,CoCrFeMnNi\nSenkov,NbMoTaW\n")
    assert list(read_path(path)) == [Skipped(path, "no abstract column (columns: Name, Composition)")]


def test_csv_bad_row_fails_with_file_and_row(tmp_path):
    text = f"Abstract,DOI\n{ABSTRACT_B},10.1000/abc\noops,10.1000/x,extra,cells\n\"{ABSTRACT_A}\",\n"
    path = write(tmp_path, "bad.csv", text)
    first, failed, last = read_path(path)
    assert first.doi == "10.1000/abc"
    assert failed == Failed(f"{path} row 3", "4 fields but the header has 2")
    assert last.abstract == ABSTRACT_A and last.origin == f"{path} row 4"


def test_csv_blank_rows_still_count(tmp_path):
    path = write(tmp_path, "gaps.csv", f"Abstract\n\n{ABSTRACT_B}\n")
    (paper,) = read_path(path)
    assert paper.origin == f"{path} row 3"


def test_non_utf8_file_is_one_failure(tmp_path):
    path = write(tmp_path, "latin1.csv", "Abstract\nAnnealed at 900 °C\n".encode("latin-1"))
    (failed,) = read_path(path)
    assert isinstance(failed, Failed) and failed.where == f"{path} line 2"
    assert "UTF-8" in failed.reason


def test_utf16_tsv_from_excel(tmp_path):
    path = write(tmp_path, "excel.tsv", f"Abstract\tYear\n{ABSTRACT_B}\t2022\n".encode("utf-16"))
    (paper,) = read_path(path)
    assert (paper.abstract, paper.year) == (ABSTRACT_B, 2022)


# --- JSON / JSONL ------------------------------------------------------------------------


def test_json_list_and_wrapper(tmp_path):
    items = f'[{{"Abstract": "{ABSTRACT_A}", "DOI": "https://doi.org/10.1000/A1", "year": 2021}}, 7]'
    path = write(tmp_path, "list.json", items)
    paper, failed = read_path(path)
    assert (paper.doi, paper.year, paper.origin) == ("10.1000/a1", 2021, f"{path} item 1")
    assert failed == Failed(f"{path} item 2", "expected a JSON object, got int")

    wrapped = {"Records": [{"summary": ABSTRACT_B, "author": [{"family": "Li", "given": "X."}, "Wang Y."]}]}
    (paper,) = read_path(write(tmp_path, "wrapped.json", json.dumps(wrapped)))
    assert (paper.abstract, paper.authors) == (ABSTRACT_B, "Li, X.; Wang Y.")


def test_json_invalid_document_is_one_failure(tmp_path):
    path = write(tmp_path, "broken.json", '[{"abstract": "x"')
    (failed,) = read_path(path)
    assert failed.where == path and failed.reason.startswith("invalid JSON")


def test_json_object_without_papers_is_one_failure(tmp_path):
    path = write(tmp_path, "other.json", '{"version": 2, "data": {"not": "a list"}}')
    (failed,) = read_path(path)
    assert isinstance(failed, Failed) and failed.where == path


def test_jsonl_bad_line_fails_and_reading_goes_on(tmp_path):
    text = f'{{"abstract": "{ABSTRACT_A}"}}\n\n{{"abstract": broken}}\n{{"abstract": ""}}\n{{"text": "{ABSTRACT_B}"}}\n'
    path = write(tmp_path, "papers.jsonl", text)
    first, failed, skipped, last = read_path(path)
    assert first.origin == f"{path} line 1"
    assert isinstance(failed, Failed) and failed.where == f"{path} line 3"
    assert skipped == Skipped(f"{path} line 4", "empty abstract")
    assert last.abstract == ABSTRACT_B and last.origin == f"{path} line 5"


# --- BibTeX ------------------------------------------------------------------------------

BIBTEX = r"""
@string{jac = "Journal of Alloys and Compounds"}

@article{li2024,
  Title = {{High}-entropy {CoCrFeNi} alloys with {\"u}ber twins},
  author = {Li, Xiao and Wang, Yu and {Smith and Sons Metallurgy}},
  journal = jac,
  year = 2024,
  DOI = {https://doi.org/10.1016/J.JALLCOM.2024.1},
  abstract = {The Al$_{0.5}$CoCrFeNi alloy was aged at 900~$^\circ$C; 12% of grains twinned and
              the hardness rose by 25\% to 5 $\mu$m depth. © 2024 Elsevier B.V.}
}

@article{broken2023,
  title = {Missing closing brace,
  year = 2023

@inproceedings{chen2022,
  title = "Laser cladding of NbMoTaW",
  booktitle = {Proc. HEA Conference},
  date = {2022-06-01},
  abstract = "Laser-clad NbMoTaW coatings kept a BCC structure up to 1400 K."
}

@article{empty2021, title = {No abstract here}}
"""


def test_bibtex_entries(tmp_path):
    path = write(tmp_path, "refs.bib", BIBTEX)
    li, failed, chen, empty = read_path(path)
    assert li == Paper(
        abstract=(
            "The Al0.5CoCrFeNi alloy was aged at 900 °C; 12% of grains twinned and the hardness "
            "rose by 25% to 5 μm depth."
        ),
        doi="10.1016/j.jallcom.2024.1",
        title="High-entropy CoCrFeNi alloys with über twins",
        authors="Li, Xiao; Wang, Yu; Smith and Sons Metallurgy",
        year=2024,
        source="Journal of Alloys and Compounds",
        origin=f"{path} entry li2024",
    )
    assert failed.where == f"{path} entry broken2023 (line 14)"
    assert (chen.title, chen.source, chen.year) == ("Laser cladding of NbMoTaW", "Proc. HEA Conference", 2022)
    assert empty == Skipped(f"{path} entry empty2021", "empty abstract")


def test_bibtex_duplicate_keys_are_both_read(tmp_path):
    text = f"@article{{k1, abstract = {{{ABSTRACT_A}}}}}\n@article{{k1, abstract = {{{ABSTRACT_B}}}}}\n"
    records = list(read_path(write(tmp_path, "dups.bib", text)))
    assert [r.abstract for r in records] == [ABSTRACT_A, ABSTRACT_B]


def test_bibtex_without_entries_is_one_failure(tmp_path):
    path = write(tmp_path, "prose.bib", "just some prose, no entries at all\n")
    assert list(read_path(path)) == [Failed(path, "no BibTeX entries found")]


# --- RIS ---------------------------------------------------------------------------------

RIS = f"""TY  - JOUR
ID  - wang2023
T1  - Oxidation of AlCrMoNbTa
AU  - Wang, Y.
AU  - Zhou, L.
PY  - 2023///
JO  - Corrosion Science
N2  - The AlCrMoNbTa alloy formed a protective
  rutile-type CrTaO4 scale at 1000 °C.
DO  - 10.1016/J.CORSCI.2023.111111
ER  - 

TY  - JOUR
TI  - No ER at the end
A1  - Kim, H.
Y1  - 2021
T2  - Materials Letters
UR  - https://example.org/page; https://doi.org/10.1016/j.matlet.2021.2
AB  - {ABSTRACT_B}
"""


def test_ris_records(tmp_path):
    path = write(tmp_path, "refs.ris", RIS)
    wang, kim = read_path(path)
    assert wang == Paper(
        abstract="The AlCrMoNbTa alloy formed a protective rutile-type CrTaO4 scale at 1000 °C.",
        doi="10.1016/j.corsci.2023.111111",
        title="Oxidation of AlCrMoNbTa",
        authors="Wang, Y.; Zhou, L.",
        year=2023,
        source="Corrosion Science",
        origin=f"{path} entry wang2023",
    )
    assert (kim.title, kim.authors, kim.year, kim.source) == ("No ER at the end", "Kim, H.", 2021, "Materials Letters")
    assert kim.doi == "10.1016/j.matlet.2021.2" and kim.origin == f"{path} entry #2"


def test_ris_record_rispy_cannot_parse_fails_alone(tmp_path):
    # After `ER`, rispy starts a record at any line beginning "TY" and attaches the continuation
    # line to the previous record's last tag, which this record lacks: a KeyError inside rispy.
    text = f"TY  - JOUR\nAB  - x\nER  - \nTYPO\n  continued\nER  - \nTY  - JOUR\nAB  - {ABSTRACT_B}\nER  - \n"
    path = write(tmp_path, "odd.ris", text)
    failed, paper = read_path(path)
    assert isinstance(failed, Failed) and failed.where == f"{path} entry #1 (line 1)"
    assert paper.abstract == ABSTRACT_B and paper.origin == f"{path} entry #2"


def test_ris_without_records_is_one_failure(tmp_path):
    path = write(tmp_path, "notris.ris", "this is not RIS\n")
    (failed,) = read_path(path)
    assert isinstance(failed, Failed) and failed.where == path


# --- text --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, title",
    [
        (f"# Eutectic HEAs\n\n{ABSTRACT_A}\n", "Eutectic HEAs"),
        (f"Eutectic HEAs\n\n{ABSTRACT_A}\n", "Eutectic HEAs"),
        (f"{ABSTRACT_A}\n", None),
    ],
)
def test_text_file_is_one_paper(tmp_path, text, title):
    path = write(tmp_path, "paper.md", text)
    assert list(read_path(path)) == [Paper(abstract=ABSTRACT_A, title=title, origin=path)]


def test_empty_text_file_is_skipped(tmp_path):
    path = write(tmp_path, "empty.txt", "\n\n")
    assert list(read_path(path)) == [Skipped(path, "empty abstract")]


def test_runaway_text_file_is_skipped_with_its_length(tmp_path):
    """A huge one-line file is no abstract: skipped, named, with its length (bug 8)."""
    text = "CoCrFeNi was annealed at 900 °C " * 4000  # 128,000 characters, no newline
    path = write(tmp_path, "runaway.txt", text)
    assert list(read_path(path)) == [Skipped(
        path, f"abstract of 128,000 characters is longer than the {MAX_ABSTRACT_CHARS:,} an "
              "abstract may have")]


def test_overlong_csv_row_is_skipped_and_the_rest_read(tmp_path):
    longest = "A" * MAX_ABSTRACT_CHARS
    path = write(tmp_path, "long.csv", f"Abstract\n{longest}\n{longest}B\n{ABSTRACT_A}\n")
    first, second, third = read_path(path)
    assert first == Paper(abstract=longest, origin=f"{path} row 2")  # the limit itself is allowed
    assert second == Skipped(f"{path} row 3", f"abstract of {MAX_ABSTRACT_CHARS + 1:,} characters "
                                              f"is longer than the {MAX_ABSTRACT_CHARS:,} an abstract may have")
    assert third.abstract == ABSTRACT_A


# --- read_path ---------------------------------------------------------------------------


def test_missing_path_raises(tmp_path):
    missing = str(tmp_path / "nope.csv")
    with pytest.raises(InputError) as info:
        read_path(missing)
    assert (info.value.where, info.value.reason) == (missing, "no such file or directory")


def test_unsupported_extension_is_skipped(tmp_path):
    path = write(tmp_path, "paper.docx", "PK\x03\x04")
    assert list(read_path(path)) == [Skipped(path, "unsupported file type .docx")]


def test_directory_walk_is_sorted_recursive_and_skips_hidden(tmp_path):
    write(tmp_path, "b.txt", ABSTRACT_B)
    write(tmp_path, "a/z.jsonl", f'{{"abstract": "{ABSTRACT_A}"}}\n')
    write(tmp_path, "a/bad.json", "[not json")
    write(tmp_path, "a/notes.docx", "ignored: unsupported files in directories are not reported")
    write(tmp_path, ".hidden.txt", ABSTRACT_A)
    write(tmp_path, ".git/x.txt", ABSTRACT_A)
    records = list(read_path(str(tmp_path)))
    wheres = [r.where if isinstance(r, Failed) else r.origin for r in records]
    assert wheres == [str(tmp_path / "a/bad.json"), f"{tmp_path / 'a/z.jsonl'} line 1", str(tmp_path / "b.txt")]
    assert isinstance(records[0], Failed)


STDIN_CASES = {
    ".json": f'[{{"abstract": "{ABSTRACT_A}"}}]',
    ".jsonl": f'{{"abstract": "{ABSTRACT_A}"}}\n{{"abstract": "{ABSTRACT_B}"}}\n',
    ".bib": f"@article{{k, abstract = {{{ABSTRACT_A}}}}}",
    ".ris": f"TY  - JOUR\nAB  - {ABSTRACT_A}\nER  - \n",
    ".csv": f'Title,Abstract\nEutectic,"{ABSTRACT_A}"\n',
    ".txt": f"{ABSTRACT_A}\n",
}


@pytest.mark.parametrize("ext", sorted(STDIN_CASES))
def test_stdin_format_is_sniffed(monkeypatch, ext):
    text = STDIN_CASES[ext]
    assert sniff_format(text) == ext
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode("utf-8")), encoding="utf-8"))
    records = list(read_path("-"))
    assert records[0].abstract == ABSTRACT_A
    assert records[0].origin.startswith("<stdin>")


def test_stdin_bad_bytes_is_one_failure(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"Abstract\n\xff\xfe\xfa"), encoding="utf-8"))
    (failed,) = read_path("-")
    assert isinstance(failed, Failed) and failed.where.startswith("<stdin>")


# --- the real corpus ---------------------------------------------------------------------


@pytest.mark.corpus
def test_scopus_corpus(shared_dir):
    path = shared_dir / "data" / "hea_qa" / "Scopus_Abstracts_Dataset.csv"
    records = list(read_path(str(path)))
    assert len(records) == 529
    assert all(isinstance(r, (Paper, Skipped)) for r in records)
    found = papers(records)
    assert len({p.text_key for p in found}) == 454
    assert not any("©" in p.abstract[-200:] and "Elsevier" in p.abstract[-200:] for p in found)

    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    by_row = {r.origin: r for r in records if isinstance(r, Paper)}
    recoverable = [n for n, row in enumerate(rows, start=2) if not row["DOI"].strip() and "doi=" in row["Link"]]
    assert recoverable
    for n in recoverable:
        assert by_row[f"{path} row {n}"].doi, f"row {n} lost its DOI"


def test_raw_sha1_hashes_the_abstract_as_read_before_cleaning(tmp_path):
    import hashlib

    raw = "An FCC  CoCrNi alloy\u00a0was rolled. © 2024 Elsevier B.V. All rights reserved."
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"abstract": raw}) + "\n", encoding="utf-8")
    (paper,) = list(read_path(str(path)))
    assert "©" not in paper.abstract
    assert paper.raw_sha1 == hashlib.sha1(" ".join(raw.split()).encode()).hexdigest()
