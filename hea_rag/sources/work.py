"""What the literature APIs give back: a `Work` per paper, or a `Missing` note per id not found."""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from hea_rag.ingest.common import make_record
from hea_rag.ingest.records import Paper, Skipped, normalize_text


@dataclass(frozen=True)
class Work:
    """One paper as an API describes it. `key` names it in reports: the DOI, else the API's id."""

    source: str  # the API: openalex, crossref or arxiv
    key: str
    doi: str | None = None
    title: str | None = None
    abstract: str | None = None
    year: int | None = None
    authors: tuple[str, ...] = ()
    journal: str | None = None
    url: str | None = None
    retrieved_at: str = ""  # when the API answered (for a cached answer: when it was cached)
    cached: bool = field(default=False, compare=False)

    def as_json(self) -> dict:
        """The record `hea-rag fetch` writes, one JSON object per paper."""
        return {"doi": self.doi, "title": self.title, "abstract": self.abstract, "year": self.year,
                "authors": list(self.authors), "journal": self.journal, "source": self.source,
                "url": self.url, "retrieved_at": self.retrieved_at}

    def as_record(self) -> Paper | Skipped:
        """The Paper the indexer takes, built and cleaned as the file readers build theirs; a
        work without an abstract has nothing to index and is Skipped."""
        where = f"{self.source} {self.key}"
        if not self.abstract:
            return Skipped(where, f"no abstract in {self.source}")
        fields = {"abstract": self.abstract, "doi": self.doi, "title": self.title,
                  "authors": list(self.authors), "year": self.year, "source": self.journal}
        return make_record(where, fields)


@dataclass(frozen=True)
class Missing:
    """An id that got no work: not found, or refused by the API."""

    source: str
    key: str
    reason: str

    def line(self) -> str:
        return f"{self.source}: {self.key}: {self.reason}"


def tidy(text: object) -> str | None:
    """Text as the APIs send it, made plain: entities decoded twice (publishers double-escape,
    `&amp;lt;5%`), whitespace runs made one space. None for nothing left."""
    if text is None:
        return None
    text = str(text)
    for _ in range(2):
        text = html.unescape(text)
    return normalize_text(text) or None


@dataclass(frozen=True)
class Query:
    """A search: words, an optional publication-date range (ISO dates), how many works at most."""

    text: str
    since: str | None = None
    until: str | None = None
    limit: int = 100
    title_only: bool = False  # match the words against titles only


def malformed(what: str, error: Exception) -> Exception:
    """The error for an answer whose shape is not the API's: named, never a traceback."""
    from hea_rag.sources.client import FetchError

    return FetchError(f"{what}: malformed response ({type(error).__name__}: {error})")


def lookup_dois(client, name: str, dois: list[str], path_of, work_of):
    """One work per DOI from `client.get(name, path_of(doi))`: a 404 is a Missing and the other
    DOIs go on; any other failure status ends the run. `work_of(reply, what)` parses a reply."""
    from hea_rag.sources.client import FetchError

    for doi in dois:
        what = f"{name}: {doi}"
        reply = client.get(name, path_of(doi), {}, what)
        if reply.status == 404:
            yield Missing(name, doi, "not found (HTTP 404)")
        elif reply.status != 200:
            raise FetchError(f"{what}: HTTP {reply.status}")
        else:
            yield work_of(reply, what)


def parsed_work(parse_work, obj: object, what: str, reply) -> Work:
    """`parse_work(obj, ...)` for a reply's work object; a shape that is not the API's is a
    named FetchError, never a traceback."""
    try:
        return parse_work(obj, reply.retrieved_at, reply.from_cache)
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise malformed(what, error) from None


def cursor_search(client, name: str, query: Query, params: dict, page_of, parse_work):
    """Up to `query.limit` works of a search, page after page: `page_of(reply, what)` gives a
    page's (work objects, next cursor), sent back as `cursor` until a page is empty or has none."""
    from hea_rag.sources.client import FetchError

    got, what = 0, f"{name}: search {query.text!r}"
    while True:
        reply = client.get(name, "/works", params, what)
        if reply.status != 200:
            raise FetchError(f"{what}: HTTP {reply.status}")
        objects, cursor = page_of(reply, what)
        for obj in objects[: query.limit - got]:
            yield parsed_work(parse_work, obj, what, reply)
            got += 1
        if got >= query.limit or not objects or not cursor:
            return
        params["cursor"] = cursor
