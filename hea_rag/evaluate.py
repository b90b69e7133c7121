"""`hea-rag eval`: retrieval and answer metrics over a JSONL file of questions and answers."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from hea_rag.errors import InputError
from hea_rag.qa_data import QAPair, read_jsonl_pairs

RECALL_KS = (1, 3, 5, 10)
REFUSAL_REASONS = ("low_score", "no_match", "model", "unsupported")


def load_qa(path: Path, split: str | None = None, limit: int | None = None) -> list[QAPair]:
    """Items of a QA JSONL file (`question`, `answer`, optional `doi`, `abstract_sha1`, `split`)."""
    items = [pair for pair in read_jsonl_pairs(path) if split is None or pair.split == split]
    return items[:limit] if limit else items


def normalize_answer(text: str) -> str:
    """Case, commas, spaces and a final full stop do not count against an answer."""
    text = text.lower().replace(",", " ")
    return re.sub(r"\s+", " ", text).strip().rstrip(".").strip()


def token_f1(prediction: str, gold: str) -> float:
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((Counter(predicted) & Counter(expected)).values())
    if not predicted or not expected or common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def answer_scores(prediction: str, gold: str) -> dict[str, float]:
    normalized_prediction, normalized_gold = normalize_answer(prediction), normalize_answer(gold)
    return {
        "exact_match": float(normalized_prediction == normalized_gold),
        "f1": token_f1(prediction, gold),
        "contains": float(bool(normalized_gold) and normalized_gold in normalized_prediction),
    }


class Evaluator:
    """Runs every item through retrieval (for recall) and the answerer, and averages."""

    def __init__(self, answerer, gold_context: bool = False):
        self.answerer = answerer
        self.gold_context = gold_context
        self.rows: list[dict[str, Any]] = []

    def run(self, items: list[QAPair], on_row=None) -> dict[str, Any]:
        for item in items:
            row = self._evaluate(item)
            self.rows.append(row)
            if on_row:
                on_row(row)
        return self.summary()

    def _evaluate(self, item: QAPair) -> dict[str, Any]:
        retriever = self.answerer.retriever
        gold_paper = retriever.reader.find_paper(item.doi, item.abstract_sha1)
        context = self._gold_abstract(gold_paper) if self.gold_context else None
        started = time.perf_counter()
        hits = retriever.search(item.question, k=max(RECALL_KS))
        answer = self.answerer.ask(item.question, context=context, hits=hits)
        seconds = time.perf_counter() - started
        rank = next((h.rank for h in hits if h.paper.id == gold_paper), None)
        return {"question": item.question, "gold": item.answer, "answer": answer.answer,
                "answerable": answer.answerable, "reason": answer.reason,
                "model_output": answer.model_output, "gold_known": gold_paper is not None,
                "rank": rank, "seconds": seconds,
                **answer_scores(answer.answer if answer.answerable else "", item.answer)}

    def _gold_abstract(self, paper_id: int | None) -> str:
        if paper_id is None:
            raise InputError("eval --gold-context", "an item's gold paper is not in the index")
        return self.answerer.retriever.reader.papers([paper_id])[paper_id].abstract

    def summary(self) -> dict[str, Any]:
        rows = self.rows
        count = len(rows) or 1
        known = [r for r in rows if r["gold_known"]]
        result: dict[str, Any] = {"questions": len(rows), "with_gold_paper": len(known)}
        for k in RECALL_KS:
            result[f"recall@{k}"] = _mean(float(r["rank"] is not None and r["rank"] <= k) for r in known)
        result["mrr"] = _mean(1.0 / r["rank"] if r["rank"] else 0.0 for r in known)
        for key in ("exact_match", "f1", "contains"):
            result[key] = sum(r[key] for r in rows) / count
        result["abstention_rate"] = sum(not r["answerable"] for r in rows) / count
        for reason in REFUSAL_REASONS:  # which gate refused, as shares of all questions
            result[f"refused_{reason}"] = sum(r["reason"] == reason for r in rows) / count
        result["seconds_per_question"] = sum(r["seconds"] for r in rows) / count
        return result


def _mean(values) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None
