"""Formatting for stdout (data) and stderr (status). Rich only when a person is looking."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
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


# --- answers across papers (`ask --papers`): one row per paper that answers -----------------

ROW_COLUMNS = ("question", "rank", "paper_id", "doi", "title", "year", "alloy", "answer",
               "evidence")
FORMATS = ("text", "json", "csv", "tsv", "markdown")
LISTED_REFUSALS = 10  # a reason refusing more papers than this gives their number, not ranks


def paper_row(question: str, row) -> list:
    """The values of ROW_COLUMNS for one paper's answer."""
    source, answer = row.source, row.answer
    evidence = answer.evidence.text if answer.evidence else ""
    return [question, row.rank, source.paper_id, source.doi or "", source.title or "",
            source.year or "", row.alloy, answer.answer, " ".join(evidence.split())]


def refused_line(rows) -> str | None:
    """The refused papers folded into one line: `refused: no_match [2] [4]; unsupported [5]`."""
    by_reason: dict[str, list[int]] = {}
    for row in rows:
        if not row.answerable:
            by_reason.setdefault(row.answer.reason, []).append(row.rank)
    if not by_reason:
        return None
    parts = [f"{reason} " + (" ".join(f"[{rank}]" for rank in ranks)
                             if len(ranks) <= LISTED_REFUSALS else f"{len(ranks)} papers")
             for reason, ranks in by_reason.items()]
    return "refused: " + "; ".join(parts)


def rows_writer(fmt: str, stream: bool, batch: bool):
    """The writer of `ask --papers` output in `fmt`. `stream`: rows are printed as they come
    (summary after them) rather than once the question is done (summary above them)."""
    if fmt in ("csv", "tsv"):
        return DelimitedRows("," if fmt == "csv" else "\t")
    if fmt == "json":
        return JsonRows()
    return (MarkdownRows if fmt == "markdown" else TextRows)(stream, batch)


class DelimitedRows:
    """CSV or TSV: one header, then a row per answering paper, flushed as it is written, so an
    interrupted run leaves whole rows. Summaries and refusals go to stderr."""

    def __init__(self, delimiter: str):
        import csv

        self.writer = csv.writer(sys.stdout, delimiter=delimiter, lineterminator="\n")

    def start(self) -> None:
        self.writer.writerow(ROW_COLUMNS)
        sys.stdout.flush()

    def row(self, question: str, row) -> None:
        if row.answerable:
            self.writer.writerow(paper_row(question, row))
            sys.stdout.flush()

    def done(self, result) -> None:
        said = _refusal(result) or result.summary or "no paper answers"
        status(f"{result.question}: {said}")

    def error(self, question: str, message: str) -> None:
        print_answer_error(question, message, as_json=False)


class JsonRows:
    """One JSON object per question, written when all its papers are done."""

    def start(self) -> None:
        pass

    def row(self, question: str, row) -> None:
        pass

    def done(self, result) -> None:
        write_json_line(result.as_dict())

    def error(self, question: str, message: str) -> None:
        print_answer_error(question, message, as_json=True)


def _refusal(result) -> str | None:
    """The sentence of a question refused before any paper was asked."""
    from hea_rag.answer import REFUSALS

    return REFUSALS[result.reason] if result.reason else None


class _BufferedRows:
    """Rows held until the question is done (summary above them), or printed as they come."""

    def __init__(self, stream: bool, batch: bool):
        self.stream, self.batch = stream, batch
        self.rows: list = []

    def start(self) -> None:
        pass

    def row(self, question: str, row) -> None:
        if self.stream and not self.rows:
            self.heading(question)
        self.rows.append(row)
        if self.stream and row.answerable:
            self.show([row], header=sum(r.answerable for r in self.rows) == 1)

    def done(self, result) -> None:
        if not self.stream or not self.rows:
            self.heading(result.question)
        lines = [_refusal(result), refused_line(self.rows)]
        if self.stream:
            lines.insert(0, result.summary)
        else:
            self.line(result.summary)
            self.show([row for row in self.rows if row.answerable], header=True)
        for line in lines:
            self.line(line)
        self.rows = []

    def error(self, question: str, message: str) -> None:
        print_answer_error(question, message, as_json=False)


class MarkdownRows(_BufferedRows):
    def heading(self, question: str) -> None:
        if self.batch:
            print(f"\n### {_cell(question)}\n")

    def show(self, rows, header: bool) -> None:
        if header and rows:
            print("\n| # | paper | alloy | answer | evidence |\n|---|---|---|---|---|")
        for row in rows:
            source = row.source
            doi = f" [{source.doi}](https://doi.org/{source.doi})" if source.doi else ""
            paper = f"{source.title or '(untitled)'} ({source.year or '-'}){doi}"
            cells = [row.rank, paper, row.alloy, row.answer.answer,
                     row.answer.evidence.text if row.answer.evidence else ""]
            print("| " + " | ".join(_cell(str(cell)) for cell in cells) + " |")
        sys.stdout.flush()

    def line(self, text: str | None) -> None:
        if text:
            print(f"\n{_cell(text)}")
            sys.stdout.flush()


def _cell(text: str) -> str:
    """Text that cannot break a markdown table row: no newlines, no bare `|`."""
    return " ".join(text.split()).replace("|", "\\|")


class TextRows(_BufferedRows):
    """A rich table on a terminal (rows as blocks when streamed); plain lines in a pipe."""

    def heading(self, question: str) -> None:
        if not self.batch:
            return
        if stdout_is_tty():
            from rich.console import Console
            from rich.markup import escape

            Console(highlight=False).rule(escape(question))
        else:
            print(f"# {question}")

    def show(self, rows, header: bool) -> None:
        if stdout_is_tty() and not self.stream:
            _rich_table(rows)
            return
        for row in rows:
            _print_row_block(row)
        sys.stdout.flush()

    def line(self, text: str | None) -> None:
        if not text:
            return
        if stdout_is_tty():
            from rich.console import Console
            from rich.markup import escape

            Console(highlight=False).print(escape(text), style="bold")
        else:
            print(text)
        sys.stdout.flush()


def _print_row_block(row) -> None:
    """`[rank] answer  alloy  doi  year  title`, then its evidence (styled on a terminal)."""
    source, answer = row.source, row.answer
    evidence = answer.evidence.text if answer.evidence else ""
    if not stdout_is_tty():
        print(f"[{row.rank}] {answer.answer}\t{row.alloy or '-'}\t{source.doi or '-'}\t"
              f"{source.year or '-'}\t{source.title or ''}")
        print(f"  evidence: {evidence}")
        return
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False)
    doi = f"https://doi.org/{source.doi}" if source.doi else "no DOI"
    console.print(f"[dim][{row.rank}][/dim] [bold]{escape(answer.answer)}[/bold]  "
                  f"{escape(row.alloy)}  [cyan]{escape(source.title or '')}[/cyan] "
                  f"({source.year or '-'})  [dim]{doi}[/dim]")
    console.print(f"  [dim]evidence:[/dim] [italic]{escape(evidence)}[/italic]")


def _rich_table(rows) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_lines=True)
    for name in ("#", "paper", "alloy", "answer", "evidence"):
        table.add_column(name, overflow="fold")
    for row in rows:
        source = row.source
        doi = f"\n[dim]{escape(source.doi)}[/dim]" if source.doi else ""
        paper = f"[cyan]{escape(source.title or '(untitled)')}[/cyan] ({source.year or '-'}){doi}"
        evidence = row.answer.evidence.text if row.answer.evidence else ""
        table.add_row(str(row.rank), paper, escape(row.alloy), f"[bold]{escape(row.answer.answer)}",
                      f"[italic]{escape(evidence)}")
    Console(highlight=False).print(table)


@contextmanager
def rows_progress(description: str):
    """A progress bar with the time left on stderr when it is a terminal (else None): call it
    with (done, total). Rows printed meanwhile go above it."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
    # stdout that is not the terminal stays untouched: rows must not land on stderr
    with Progress(*columns, console=Console(stderr=True), transient=True,
                  redirect_stdout=stdout_is_tty(), redirect_stderr=False) as progress:
        task = progress.add_task(description, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)
