"""Formatting for stdout (data) and stderr (status). Rich only when a person is looking."""

from __future__ import annotations

import json
import sys
from typing import Any

from hea_rag.retrieve import Hit


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()


def hit_record(hit: Hit, query: str | None = None) -> dict[str, Any]:
    """The JSON object of one search hit."""
    record: dict[str, Any] = {"query": query} if query is not None else {}
    record.update(
        rank=hit.rank,
        score=round(hit.score, 6),
        paper_id=hit.paper.id,
        doi=hit.paper.doi,
        title=hit.paper.title,
        year=hit.paper.year,
        text=hit.text,
        file=hit.paper.file,
        page=hit.page,
        passage_id=hit.passage_id,
        dense_score=None if hit.dense is None else round(hit.dense, 4),
        lexical_score=None if hit.lexical is None else round(hit.lexical, 4),
    )
    return record


def write_json_line(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def label(hit: Hit, words: int = 12) -> str:
    """Title, or the first words of the passage when the source had no title."""
    if hit.paper.title:
        return hit.paper.title
    head = hit.paper.abstract.split()
    return " ".join(head[:words]) + (" ..." if len(head) > words else "")


def print_hits(hits: list[Hit], query: str | None = None) -> None:
    if stdout_is_tty():
        _print_hits_rich(hits, query)
        return
    if query is not None:
        print(f"# {query}")
    for hit in hits:
        doi = hit.paper.doi or "-"
        year = hit.paper.year or "-"
        file = f"\t{hit.paper.file}" if hit.paper.file else ""
        print(f"{hit.rank}\t{hit.score:.4f}\t{doi}\t{year}\t{label(hit)}{file}")
        print(f"\t{_page(hit)}{hit.text}")
    sys.stdout.flush()


def _print_hits_rich(hits: list[Hit], query: str | None) -> None:
    from rich.console import Console
    from rich.markup import escape

    # no automatic highlighting: it colours the digits of alloy names (the "1" of AlCoCrFeNi2.1)
    console = Console(highlight=False)
    if query is not None:
        console.rule(escape(query))
    if not hits:
        console.print("[dim]no results[/dim]")
    for hit in hits:
        doi = f"https://doi.org/{hit.paper.doi}" if hit.paper.doi else "no DOI"
        year = f" ({hit.paper.year})" if hit.paper.year else ""
        file = f"  {hit.paper.file}" if hit.paper.file else ""
        console.print(f"[bold]{hit.rank}.[/bold] [cyan]{escape(label(hit))}[/cyan]{year}"
                      f"  [dim]score {hit.score:.4f}  {doi}{escape(file)}[/dim]")
        console.print(escape(_page(hit) + hit.text), style="default", highlight=False)
        console.print()


def _page(hit: Hit) -> str:
    """`(page 4) ` before a passage of a PDF body."""
    return f"(page {hit.page}) " if hit.page is not None else ""


def status(message: str) -> None:
    """A line of progress or status for a person: always stderr, never mixed into data."""
    print(message, file=sys.stderr, flush=True)


class StageStatus:
    """A transient status line (a spinner and the current stage) on stderr while `ask` loads
    its models, retrieves and starts generating; nothing at all when stderr is not a terminal.
    Call it with each stage; `stop()` clears the line before anything is printed."""

    def __init__(self) -> None:
        self._status = None

    def __call__(self, stage: str) -> None:
        if not sys.stderr.isatty():
            return
        from rich.markup import escape

        if self._status is None:
            from rich.console import Console

            self._status = Console(stderr=True).status(escape(stage))
            self._status.start()
        else:  # naming the spinner redraws at once: a short stage still shows
            self._status.update(escape(stage), spinner="dots")

    def stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def __enter__(self) -> StageStatus:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def print_answer(answer) -> None:
    """The answer (or the refusal, in words), the sentence that supports it, then the numbered
    sources. Rich on a terminal, plain lines in a pipe."""
    if stdout_is_tty():
        _print_answer_rich(answer)
        return
    print(answer.answer)
    if answer.evidence is not None:
        print(f"  evidence: {answer.evidence.text}")
    for source in answer.sources:
        file = f"\t{source.file}" if source.file else ""
        print(f"[{source.rank}] {source.doi or '-'}\t{source.year or '-'}\t{source.title or ''}{file}")
    sys.stdout.flush()


def _print_answer_rich(answer) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    style = "bold" if answer.answerable else "yellow"
    console.print(escape(answer.answer), style=style, highlight=False)
    if answer.evidence is not None:
        console.print(f"  [dim]evidence:[/dim] [italic]{escape(answer.evidence.text)}[/italic]",
                      highlight=False)
    for source in answer.sources:
        doi = f"https://doi.org/{source.doi}" if source.doi else "no DOI"
        title = source.title or (source.text[:80] + "...")
        year = f" ({source.year})" if source.year else ""
        file = f"  {source.file}" if source.file else ""
        console.print(f"[dim][{source.rank}][/dim] {escape(title)}{year}  [dim]{doi}{escape(file)}[/dim]",
                      highlight=False)


def print_answer_error(question: str, message: str, as_json: bool) -> None:
    """One failed question of a batch: an error object on its own line, the batch goes on."""
    if as_json:
        write_json_line({"question": question, "error": message})
    else:
        status(f"hea-rag: error on {question!r}: {message}")


def print_metrics(metrics: dict[str, Any], as_json: bool) -> None:
    if as_json:
        write_json_line(metrics)
        return
    for key, value in metrics.items():
        shown = f"{value:.3f}" if isinstance(value, float) else value
        print(f"{key}\t{shown}")
