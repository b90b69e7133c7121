"""PDF benchmark: which library reads papers best, and how well hea-rag reads them.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_pdf.py            # prints markdown tables
    .venv/bin/python scripts/bench_pdf.py --papers 10 --no-retrieval   # a quick run

1. Libraries (pypdf, pdfminer.six, pypdfium2 plain, pypdfium2 with hea-rag's layout pass) on the
   four real PDFs under shared/data/real_world/pdfs and on HEA abstracts of the shared CSV
   typeset here with reportlab (real subscripts): pages/s, share of the printed title/DOI/abstract
   start found in page 1's text, share of the typeset abstracts' words and formulas found verbatim.
2. hea-rag's reader: title, DOI and abstract start against expected.json; typeset abstracts read
   back exactly; formula recovery (a formula printed in one abstract only, queried alone,
   finds its paper first); pages/s.
3. Retrieval on dev_qa when the typeset PDFs replace their CSV rows, and with --full-text.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from hea_rag.config import shared_dir  # noqa: E402

LICENCES = {"pypdf": "BSD-3", "pdfminer.six": "MIT", "pypdfium2": "Apache-2.0/BSD-3",
            "pypdfium2 + layout": "Apache-2.0/BSD-3"}


def main() -> None:
    shared = shared_dir(ROOT)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=20, help="HEA abstracts to typeset")
    parser.add_argument("--no-retrieval", action="store_true")
    args = parser.parse_args()
    real = shared / "data/real_world/pdfs"
    expected = json.loads((real / "expected.json").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as tmp:
        rows = typeset_corpus(shared, Path(tmp), args.papers)
        print(f"machine: 2 CPU cores, no GPU; {len(rows)} typeset HEA papers "
              f"({sum(1 for r in rows if r['layout'] == 'journal')} two-column journal, the rest preprint)\n")
        library_table(real, expected, rows)
        reader_table(real, expected, rows)
        if not args.no_retrieval:
            retrieval_table(shared, rows, Path(tmp))


# --- typeset corpus ---------------------------------------------------------------------------


def _sha1(text: str) -> str:
    return hashlib.sha1(" ".join(text.split()).encode("utf-8")).hexdigest()


def typeset_corpus(shared: Path, tmp: Path, count: int) -> list[dict]:
    """CSV abstracts with a formula no other abstract prints, typeset as PDFs."""
    from hea_rag.ingest.clean import clean_abstract
    from hea_rag.ingest.doi import doi_from_link
    from pdf_typeset import TypesetPaper, filler_body, typeset

    path = shared / "data/hea_qa/Scopus_Abstracts_Dataset.csv"
    with open(path, encoding="utf-8-sig", newline="") as handle:
        csv_rows = list(csv.DictReader(handle))
    asked = {json.loads(line)["abstract_sha1"] for line in
             (shared / "bench/dev_qa.jsonl").read_text(encoding="utf-8").splitlines()}
    unique = _unique_formulas([row["Abstract"] for row in csv_rows])
    chosen, seen = [], set()
    for row in csv_rows:
        sha = _sha1(row["Abstract"])
        formulas = unique.get(sha, [])
        if sha in asked and formulas and sha not in seen and len(chosen) < count:
            seen.add(sha)
            chosen.append((row, sha, formulas))
    out = []
    for n, (row, sha, formulas) in enumerate(chosen):
        layout = "journal" if n % 2 == 0 else "preprint"
        doi = doi_from_link(row.get("Link")) or row.get("DOI") or f"10.9999/typeset.{n}"
        paper = TypesetPaper(f"A study of the {formulas[0]} high-entropy alloy", clean_abstract(row["Abstract"]),
                             doi, body=filler_body(""), references=[
                                 "[1] A. Cited, Intermetallics 120 (2020), https://doi.org/10.1016/j.intermet.2020.1"])
        pdf = typeset(tmp / f"hea_{n:02d}.pdf", paper, layout, cover=n % 5 == 4)
        out.append({"pdf": pdf, "sha1": sha, "formulas": formulas, "paper": paper, "layout": layout})
    return out


def _unique_formulas(abstracts: list[str]) -> dict[str, list[str]]:
    """abstract sha1 -> formulas with amounts whose composition key no other abstract has."""
    from hea_rag.lexical import parse_formula, tokenize

    owners: dict[str, set[str]] = {}
    found: dict[str, list[tuple[str, str]]] = {}
    for abstract in abstracts:
        sha = _sha1(abstract)
        for word in abstract.split():
            word = word.strip(".,;:()[]")
            if re.search(r"\d", word) and parse_formula(word):
                key = next((t for t in tokenize(word) if t.startswith("cmp_")), None)
                if key:
                    owners.setdefault(key, set()).add(sha)
                    found.setdefault(sha, []).append((word, key))
    return {sha: list(dict.fromkeys(w for w, k in pairs if owners[k] == {sha}))
            for sha, pairs in found.items()}


# --- 1. libraries -----------------------------------------------------------------------------


def _pypdf(path: Path) -> list[str]:
    import pypdf

    return [page.extract_text() or "" for page in pypdf.PdfReader(path).pages]


def _pdfminer(path: Path) -> list[str]:
    from pdfminer.high_level import extract_text
    from pdfminer.pdfpage import PDFPage

    with open(path, "rb") as handle:
        count = sum(1 for _ in PDFPage.get_pages(handle))
    return [extract_text(path, page_numbers=[n]) for n in range(count)]


def _pdfium(path: Path) -> list[str]:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(path)
    try:
        return [document[n].get_textpage().get_text_range() for n in range(len(document))]
    finally:
        document.close()


def _pdfium_layout(path: Path) -> list[str]:
    import pypdfium2 as pdfium

    from hea_rag.ingest.pdf_layout import page_lines

    document = pdfium.PdfDocument(path)
    try:
        return ["\n".join(line.text for line in page_lines(document[n], n + 1)) for n in range(len(document))]
    finally:
        document.close()


EXTRACTORS = {"pypdf": _pypdf, "pdfminer.six": _pdfminer, "pypdfium2": _pdfium,
              "pypdfium2 + layout": _pdfium_layout}


def _flat(text: str) -> str:
    from hea_rag.ingest.clean import clean_text
    from hea_rag.ingest.pdf_text import fix_symbols

    return clean_text(fix_symbols(text)).lower()


def library_table(real: Path, expected: list[dict], rows: list[dict]) -> None:
    print("### PDF libraries\n")
    print("| library | licence | real PDFs pages/s | printed title / DOI / abstract start found in page 1 "
          "| typeset abstract words found | typeset formulas found verbatim |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, extract in EXTRACTORS.items():
        pages, seconds, found, total = 0, 0.0, 0, 0
        for item in expected:
            started = time.perf_counter()
            texts = extract(real / item["file"])
            seconds += time.perf_counter() - started
            pages += len(texts)
            first = _flat(texts[0])
            for key in ("title", "doi_printed", "abstract_starts"):
                found += _flat(item[key]) in first
                total += 1
        words = hits = formulas = formula_hits = 0
        for row in rows:
            text = " ".join(extract(row["pdf"]))
            flat_words = set(_flat(text).split())
            wanted = _flat(row["paper"].abstract).split()
            words += len(wanted)
            hits += sum(word in flat_words for word in wanted)
            formulas += len(row["formulas"])
            formula_hits += sum(f in text for f in row["formulas"])
        print(f"| {name} | {LICENCES[name]} | {pages / seconds:.0f} | {found}/{total} | "
              f"{hits / words:.3f} | {formula_hits}/{formulas} = {formula_hits / formulas:.2f} |")
    print()


# --- 2. hea-rag's reader ------------------------------------------------------------------------


def reader_table(real: Path, expected: list[dict], rows: list[dict]) -> None:
    from hea_rag.ingest import Paper, read_path
    from hea_rag.ingest.clean import clean_abstract
    from hea_rag.ingest.pdf_text import fix_symbols

    print("### hea-rag PDF reader (pypdfium2 + layout), real PDFs\n")
    print("| file | pages | title | DOI | abstract start | year | pages/s |")
    print("| --- | ---: | --- | --- | --- | ---: | ---: |")
    counts = [0, 0, 0]
    for item in expected:
        started = time.perf_counter()
        paper = next(r for r in read_path(str(real / item["file"]), full_text=True))
        seconds = time.perf_counter() - started
        ok = [isinstance(paper, Paper) and paper.title == item["title"],
              isinstance(paper, Paper) and paper.doi == item["doi_printed"].lower(),
              isinstance(paper, Paper) and paper.abstract.startswith(item["abstract_starts"])]
        counts = [c + o for c, o in zip(counts, ok)]
        marks = ["yes" if o else "NO" for o in ok]
        print(f"| {item['file']} | {item['pages']} | {' | '.join(marks)} | {getattr(paper, 'year', '-')} "
              f"| {item['pages'] / seconds:.0f} (full text) |")
    print(f"| **all** | | {counts[0]}/4 | {counts[1]}/4 | {counts[2]}/4 | | |\n")
    exact = doi = title = 0
    for row in rows:
        paper = next(read_path(str(row["pdf"])))
        typed = clean_abstract(fix_symbols(row["paper"].abstract))  # minus signs typed as `-`
        exact += isinstance(paper, Paper) and paper.abstract == typed
        doi += isinstance(paper, Paper) and paper.doi == row["paper"].doi.lower()
        title += isinstance(paper, Paper) and paper.title == row["paper"].title
    n = len(rows)
    print(f"Typeset HEA PDFs ({n}): abstract read back exactly {exact}/{n}, DOI {doi}/{n}, title {title}/{n}.\n")


# --- 3. retrieval ---------------------------------------------------------------------------------


def retrieval_table(shared: Path, rows: list[dict], tmp: Path) -> None:
    from hea_rag.embedder import load_embedder
    from hea_rag.indexer import index_paths

    csv_path = shared / "data/hea_qa/Scopus_Abstracts_Dataset.csv"
    questions = [json.loads(line) for line in (shared / "bench/dev_qa.jsonl").read_text(encoding="utf-8").splitlines()]
    replaced = {row["sha1"] for row in rows}
    reduced = tmp / "without_typeset.csv"
    with open(csv_path, encoding="utf-8-sig", newline="") as source, open(reduced, "w", encoding="utf-8", newline="") as out:
        reader = csv.DictReader(source)
        writer = csv.DictWriter(out, fieldnames=reader.fieldnames)
        writer.writeheader()
        writer.writerows(r for r in reader if _sha1(r["Abstract"]) not in replaced)
    pdfs = [str(row["pdf"]) for row in rows]
    embedder = load_embedder()
    variants = {"CSV only": ([str(csv_path)], False),
                "typeset PDFs replace their rows": ([str(reduced)] + pdfs, False),
                "same, --full-text": ([str(reduced)] + pdfs, True)}
    print(f"### Retrieval on dev_qa ({len(questions)} questions; "
          f"{sum(q['abstract_sha1'] in replaced for q in questions)} about the typeset papers)\n")
    print("| index | passages | index s | Recall@1 | Recall@5 | Recall@1 on typeset papers | formulas recovered |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, (paths, full_text) in variants.items():
        folder = tmp / re.sub(r"\W+", "_", name)
        started = time.perf_counter()
        summary = index_paths(paths, folder, full_text=full_text)
        seconds = time.perf_counter() - started
        r1, r5, r1_typeset, formulas = _recall(folder, embedder, questions, rows, csv_path)
        print(f"| {name} | {summary.passages} | {seconds:.0f} | {r1:.3f} | {r5:.3f} | {r1_typeset:.3f} | {formulas} |")
    print()


def _recall(folder, embedder, questions, rows, csv_path):
    from hea_rag.retrieve import Retriever
    from hea_rag.store import IndexReader

    with IndexReader(folder) as reader:
        gold = _gold(reader, rows, csv_path)
        retriever = Retriever(reader, embedder)
        ranks = []
        for question in questions:
            hits = retriever.search(question["question"], k=5)
            ids = [hit.paper.id for hit in hits]
            target = gold.get(question["abstract_sha1"])
            ranks.append(ids.index(target) + 1 if target in ids else None)
        typeset = {row["sha1"] for row in rows}
        on_typeset = [r for q, r in zip(questions, ranks) if q["abstract_sha1"] in typeset]
        recovered = total = 0
        for row in rows:
            for formula in row["formulas"]:
                total += 1
                top = retriever.search(formula, k=1)
                recovered += bool(top) and top[0].paper.id == gold.get(row["sha1"])
    n = len(ranks)
    return (sum(r == 1 for r in ranks) / n, sum(r is not None for r in ranks) / n,
            sum(r == 1 for r in on_typeset) / max(len(on_typeset), 1), f"{recovered}/{total} = {recovered / total:.2f}")


def _gold(reader, rows, csv_path) -> dict[str, int]:
    """abstract sha1 -> paper id: CSV rows through their stored raw hash, PDFs through their file."""
    gold = {}
    for paper_id, origin, raw in reader.db.execute("SELECT id, origin, raw_sha1 FROM papers"):
        if raw:
            gold.setdefault(raw, paper_id)
    by_file = {str(row["pdf"]): row["sha1"] for row in rows}
    for paper_id, origin in reader.db.execute("SELECT id, origin FROM papers"):
        if origin in by_file:
            gold[by_file[origin]] = paper_id
    return gold


if __name__ == "__main__":
    main()
