"""`hea-rag fetch`: a search or id lookups over one literature API, and `--complete`.

A run that loses the network (or gets an answer it cannot read) keeps the works it already has:
the caller writes or indexes them, then reports the error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from hea_rag.ingest.doi import (
    arxiv_doi,
    arxiv_id_from_doi,
    normalize_arxiv_id,
    normalize_doi,
)
from hea_rag.sources import arxiv, crossref, openalex
from hea_rag.sources.client import ApiClient, FetchError, Unreachable
from hea_rag.sources.work import Missing, Query, Work

MODULES = {"openalex": openalex, "crossref": crossref, "arxiv": arxiv}
# A DOI in running text (a BibTeX field, a RIS line, a CSV cell): it ends at a space, a quote,
# a brace or a comma (rare inside DOIs, common between CSV cells); trailing sentence
# punctuation is trimmed after.
_DOI_IN_TEXT = re.compile(r"10\.\d{4,9}(?:\.\d+)*/[^\s\"'<>{},]+")
_ARXIV_IN_TEXT = re.compile(r"(?:arxiv:\s*|arxiv\.org/(?:abs|pdf)/)(\S+)", re.I)


@dataclass
class FetchResult:
    works: list[Work] = field(default_factory=list)
    missing: list[Missing] = field(default_factory=list)
    error: FetchError | None = None  # what ended the run early, if anything did

    @property
    def cached(self) -> int:
        return sum(work.cached for work in self.works)

    def take(self, items: Iterable[Work | Missing]) -> None:
        """Collect `items`; a failure keeps what came before it and ends the run."""
        try:
            for item in items:
                (self.missing if isinstance(item, Missing) else self.works).append(item)
        except Unreachable as error:
            self.error = Unreachable(f"{error}; cached results: {self.cached}")
        except FetchError as error:
            self.error = error


def search(client: ApiClient, source: str, query: Query) -> FetchResult:
    result = FetchResult()
    result.take(MODULES[source].search(client, query))
    if not result.works and result.error is None:
        result.error = FetchError(f"{source}: no works match {query.text!r}")
    return result


def lookup(client: ApiClient, dois: list[str], arxiv_ids: list[str], source: str | None) -> FetchResult:
    """Works for ids as given; each id that is not one, or that gets nothing, is a Missing."""
    result = FetchResult()
    plan = route(dois, arxiv_ids, source, result.missing)
    for name, ids in plan.items():
        if result.error is None:
            result.take(MODULES[name].lookup(client, ids))
    return result


def route(dois: list[str], arxiv_ids: list[str], source: str | None,
          missing: list[Missing]) -> dict[str, list[str]]:
    """Which API looks up which ids: DOIs go to OpenAlex and arXiv ids to arXiv unless `source`
    says otherwise; arXiv DOIs and arXiv ids convert into each other on the way."""
    plan: dict[str, list[str]] = {}
    for raw in dois:
        doi, target = normalize_doi(raw), source or "openalex"
        if doi is None:
            missing.append(Missing("input", raw, "not a DOI"))
        elif target == "arxiv" and not arxiv_id_from_doi(doi):
            missing.append(Missing("arxiv", doi, "not an arXiv DOI (10.48550/arXiv.ID): "
                                                 "look it up with --source openalex or crossref"))
        else:
            plan.setdefault(target, []).append(arxiv_id_from_doi(doi) if target == "arxiv" else doi)
    for raw in arxiv_ids:
        arxiv_id, target = normalize_arxiv_id(raw), source or "arxiv"
        if arxiv_id is None:
            missing.append(Missing("input", raw, "not an arXiv id"))
        else:
            plan.setdefault(target, []).append(arxiv_id if target == "arxiv" else arxiv_doi(arxiv_id))
    return {name: list(dict.fromkeys(ids)) for name, ids in plan.items()}


def ids_in_text(text: str) -> tuple[list[str], list[str]]:
    """(DOIs, arXiv ids) found in a list of ids, a BibTeX or RIS file, a CSV...: DOIs anywhere,
    arXiv ids written `arXiv:ID` or as arxiv.org links, or alone on their line."""
    dois, arxiv_ids = [], []
    for line in text.splitlines():
        found = [_trim(match) for match in _DOI_IN_TEXT.findall(line)]
        dois += [doi for doi in found if normalize_doi(doi)]
        candidates = _ARXIV_IN_TEXT.findall(line) + ([line.strip()] if not found else [])
        arxiv_ids += [i for i in map(normalize_arxiv_id, (c.rstrip(".,;}") for c in candidates)) if i]
    return list(dict.fromkeys(dois)), list(dict.fromkeys(arxiv_ids))


def _trim(doi: str) -> str:
    """A DOI cut out of text, without the punctuation of the sentence or field around it."""
    doi = doi.rstrip(".,;")
    while doi.endswith(")") and doi.count(")") > doi.count("("):
        doi = doi[:-1].rstrip(".,;")
    return doi


@dataclass
class Completion:
    asked: int  # indexed papers with a DOI and no title
    changed: int
    result: FetchResult


def complete(client: ApiClient, folder: Path, source: str | None, lock_timeout: float,
             on_wait=None) -> Completion:
    """Look up the indexed papers that have a DOI but no title, and fill in what they lack."""
    from hea_rag.indexer import fill_in_papers
    from hea_rag.store import IndexReader

    with IndexReader(folder) as reader:
        dois = [row.doi for row in reader.papers_without_title()]
    result = lookup(client, dois, [], source)
    found = {}
    for work in result.works:
        fields = {"title": work.title, "authors": "; ".join(work.authors) or None,
                  "year": work.year, "source": work.journal}
        found[work.doi] = found[arxiv_doi(work.key) if work.source == "arxiv" else work.doi] = fields
    changed = fill_in_papers(folder, found, lock_timeout, on_wait) if found else 0
    return Completion(len(dois), changed, result)


@dataclass
class FetchRequest:
    """What `hea-rag fetch` was asked: a search (`query`) or lookups (`dois`, `arxiv_ids`)."""

    query: str | None = None
    dois: list[str] = field(default_factory=list)
    arxiv_ids: list[str] = field(default_factory=list)
    source: str | None = None  # None: OpenAlex for searches and DOIs, arXiv for arXiv ids
    since: str | None = None  # ISO dates
    until: str | None = None
    limit: int = 100
    title_only: bool = False


def run(client: ApiClient, request: FetchRequest) -> FetchResult:
    if request.query is not None:
        query = Query(request.query, request.since, request.until, request.limit, request.title_only)
        return search(client, request.source or "openalex", query)
    return lookup(client, request.dois, request.arxiv_ids, request.source)


def read_ids(path: str) -> tuple[list[str], list[str]]:
    """(DOIs, arXiv ids) in the file at `path` (- for stdin); InputError when it has none."""
    import sys

    from hea_rag.errors import InputError

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(path, getattr(error, "strerror", None) or str(error)) from None
    dois, arxiv_ids = ids_in_text(text)
    if not dois and not arxiv_ids:
        raise InputError(path, "no DOI or arXiv id found")
    return dois, arxiv_ids
