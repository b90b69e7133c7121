"""`hea-rag synth` over an index: which indexed papers to use, and the JSONL records made from them.

`--papers` takes `all`, a comma-separated list of DOIs, or `exclude:FILE`, where FILE lists the
papers to leave out, one per line: a DOI, an abstract sha1 (40 hex digits, dev_qa's key), or a
JSON object with `doi` and/or `abstract_sha1` (so a QA file such as the natural-question set
excludes its own papers: `--papers exclude:scripts/data/natural_heldout.jsonl`).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hea_rag.errors import InputError
from hea_rag.ingest.doi import normalize_doi
from hea_rag.synth import abstract_sha1, fair, split_of, synthesize

BATCH = 200
_SHA1 = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class Selection:
    """Papers to use: all but `excluded`, or only the DOIs of `only` when it is given."""

    only: frozenset[str] | None = None
    excluded: frozenset[str] = frozenset()  # DOIs and abstract sha1s

    def wants(self, doi: str | None, sha1: str) -> bool:
        if self.only is not None:
            return doi in self.only
        return not ({doi, sha1} & self.excluded)


@dataclass
class SynthSummary:
    papers: int = 0
    pairs: int = 0
    kinds: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    paraphrased: tuple[int, int] | None = None  # (kept, tried), with a paraphraser

    def count(self, kind: str) -> None:
        self.pairs += 1
        self.kinds[kind] += 1

    def line(self) -> str:
        kinds = ", ".join(f"{kind} {count}" for kind, count in self.kinds.most_common())
        rate = self.papers / self.seconds if self.seconds else 0.0
        rewritten = (f"; paraphrases kept {self.paraphrased[0]} of {self.paraphrased[1]}"
                     if self.paraphrased else "")
        return (f"synth: {self.papers} papers, {self.pairs} pairs ({kinds or 'none'}){rewritten}, "
                f"{rate:.3g} papers/s")


def parse_selection(spec: str) -> Selection:
    """`all`, `DOI[,DOI...]` or `exclude:FILE` (see the module's docstring)."""
    spec = spec.strip()
    if spec in ("", "all"):
        return Selection()
    if spec.startswith("exclude:"):
        return Selection(excluded=frozenset(_listed(Path(spec[len("exclude:"):]))))
    dois = {normalize_doi(part) for part in spec.split(",") if part.strip()}
    if None in dois:
        raise InputError("--papers", f"not `all`, `exclude:FILE` nor a list of DOIs: {spec!r}")
    return Selection(only=frozenset(dois))


def _listed(path: Path) -> Iterator[str]:
    """DOIs and abstract sha1s named in `path`, one per line or as JSON objects."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(str(path), f"cannot read the papers to exclude ({error})") from None
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        record = _record(line, f"{path} line {number}")
        yield from (key for key in (normalize_doi(record.get("doi")),
                                    record.get("abstract_sha1")) if key)


def _record(line: str, where: str) -> dict:
    if line.startswith("{"):
        try:
            return json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(where, f"not a JSON object ({error})") from None
    if _SHA1.fullmatch(line.lower()):
        return {"abstract_sha1": line.lower()}
    if normalize_doi(line) is None:
        raise InputError(where, f"neither a DOI nor an abstract sha1: {line!r}")
    return {"doi": line}


def _drawn(question: str, seed: int, share: float) -> bool:
    """A fixed draw per question, so a rerun paraphrases the same ones."""
    digest = hashlib.sha1(f"paraphrase:{seed}:{question}".encode("utf-8")).hexdigest()
    return int(digest[:8], 16) / 0xFFFFFFFF < share


def indexed_papers(reader) -> Iterator[tuple]:
    """(paper row, abstract sha1) of every indexed paper, in index order. The sha1 is the one the
    paper was indexed under (of its abstract as read, before cleaning), which is what
    `reader.find_paper` looks up when finetune grounds a pair."""
    rows = reader.db.execute("SELECT id, raw_sha1 FROM papers ORDER BY id").fetchall()
    for at in range(0, len(rows), BATCH):
        batch = dict(rows[at:at + BATCH])
        papers = reader.papers(batch)
        for paper_id, raw in batch.items():
            paper = papers[paper_id]
            yield paper, raw or abstract_sha1(paper.abstract)


def synth_index(reader, selection: Selection, write: Callable[[dict], None], per_paper: int,
                seed: int = 0, heldout_fraction: float = 0.0, paraphraser=None,
                paraphrase_share: float = 1.0) -> SynthSummary:
    """Pairs for every selected paper of the index, each handed to `write` as a JSON-ready dict.
    With a `paraphraser` (synth/paraphrase.py), a fixed draw of `paraphrase_share` of the pairs
    is also asked in the model's words, written as one more pair with `paraphrase_of`."""
    missing = [doi for doi in sorted(selection.only or ()) if reader.find_paper(doi) is None]
    if missing:
        raise InputError("--papers", f"not in the index: {', '.join(missing)}")
    summary, started = SynthSummary(), time.perf_counter()
    for paper, sha1 in indexed_papers(reader):
        if not selection.wants(paper.doi, sha1):
            continue
        summary.papers += 1
        split = split_of(sha1, heldout_fraction)
        for pair in synthesize(paper.abstract, per_paper, seed):
            record = {"question": pair.question, "answer": pair.answer, "kind": pair.kind,
                      "paper_id": paper.id, "doi": paper.doi or "", "abstract_sha1": sha1,
                      "start": pair.start, "end": pair.end, "split": split}
            write(record)
            summary.count(pair.kind)
            if paraphraser and _drawn(pair.question, seed, paraphrase_share):
                rewritten = paraphraser.rewrite(
                    pair.question, lambda q: fair(q, pair.answer, paper.abstract))
                if rewritten:
                    write({**record, "question": rewritten, "paraphrase_of": pair.question})
                    summary.count(pair.kind)
    if paraphraser:
        summary.paraphrased = (paraphraser.count.kept, paraphraser.count.tried)
    summary.seconds = time.perf_counter() - started
    return summary
