"""QA pairs for fine-tuning: the upstream SQuAD-like layout (lists stored as dicts keyed "0",
"1", ...), standard SQuAD JSON, and JSONL, all read into one QAPair record and cleaned."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hea_rag.errors import InputError

_PLACEHOLDER = re.compile(r"<[^>]*>")
_STRAY = " ,;:"


@dataclass(frozen=True)
class QAPair:
    question: str
    answer: str
    context: str | None = None
    doi: str | None = None
    abstract_sha1: str | None = None
    split: str | None = None


@dataclass
class LoadReport:
    """What loading kept and dropped, for the summary on stderr."""

    kept: int = 0
    cleaned: int = 0
    dropped: Counter = field(default_factory=Counter)


def load_pairs(path: Path) -> tuple[list[QAPair], LoadReport]:
    """Every usable pair in `path`, answers cleaned; placeholders and empty answers dropped."""
    report = LoadReport()
    pairs = []
    for raw in _raw_pairs(path):
        answer = clean_answer(raw.answer)
        if not raw.question.strip():
            report.dropped["empty question"] += 1
        elif _PLACEHOLDER.search(raw.answer):
            report.dropped["placeholder answer"] += 1
        elif not answer:
            report.dropped["empty answer"] += 1
        else:
            report.cleaned += answer != raw.answer
            pairs.append(QAPair(raw.question.strip(), answer, raw.context, raw.doi,
                                raw.abstract_sha1, raw.split))
    report.kept = len(pairs)
    return pairs, report


def clean_answer(answer: str) -> str:
    """Stray commas and spaces around an answer ("35.7, %" -> "35.7 %", "MoNbTaW," -> "MoNbTaW")."""
    text = re.sub(r"\s*,\s*(?=[%°])", " ", answer)
    return " ".join(text.split()).strip(_STRAY)


def _raw_pairs(path: Path) -> Iterator[QAPair]:
    if path.suffix.lower() == ".jsonl":
        yield from read_jsonl_pairs(path)
        return
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(str(path), f"not a readable JSON file ({error})") from None
    if not isinstance(document, dict) or "data" not in document:
        raise InputError(str(path), "expected SQuAD-style JSON with a top-level `data`")
    yield from _squad_pairs(path, document["data"])


def read_jsonl_pairs(path: Path) -> Iterator[QAPair]:
    """Pairs of a JSONL file as written (uncleaned); `eval` reads its QA files with this too."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                yield QAPair(str(record["question"]), str(record["answer"]),
                             record.get("context"), record.get("doi") or None,
                             record.get("abstract_sha1"), record.get("split"))
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
                raise InputError(f"{path} line {number}", f"not a QA record ({error})") from None


def _squad_pairs(path: Path, data: Any) -> Iterator[QAPair]:
    """Standard SQuAD (lists) and the upstream variant (dicts keyed "0", "1", ...)."""
    try:
        for article in _items(data):
            for paragraph in _items(article["paragraphs"]):
                context = paragraph.get("context")
                for qa in _items(paragraph["qas"]):
                    answers = _items(qa.get("answers") or [])
                    text = answers[0]["text"] if answers else ""
                    yield QAPair(str(qa["question"]), str(text),
                                 context if isinstance(context, str) else None)
    except (KeyError, TypeError, AttributeError, IndexError) as error:
        raise InputError(str(path), f"unexpected SQuAD layout ({error!r})") from None


def _items(container: Any) -> list:
    """A list as it is, or a dict keyed "0", "1", ... as the list it stands for."""
    if isinstance(container, dict):
        return [container[key] for key in sorted(container, key=lambda k: int(k))]
    if isinstance(container, list):
        return container
    raise TypeError(f"expected a list or an index-keyed dict, got {type(container).__name__}")
