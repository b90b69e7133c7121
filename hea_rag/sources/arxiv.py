"""arXiv (export.arxiv.org/api/query): Atom feeds by id or by search, in both formats seen.

The pre-2025 feeds declare the opensearch and arxiv namespaces on each element and put
`published` before `title`; the current ones declare them on the feed. ElementTree matches
elements by namespace URI, so one reader serves both.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

from hea_rag.ingest.doi import arxiv_base_id, arxiv_doi, normalize_arxiv_id, normalize_doi
from hea_rag.sources.client import ApiClient, FetchError
from hea_rag.sources.work import Missing, Query, Work, malformed, tidy

NAME = "arxiv"
PAGE_SIZE = 100
IDS_PER_REQUEST = 100
NS = {"atom": "http://www.w3.org/2005/Atom", "os": "http://a9.com/-/spec/opensearch/1.1/",
      "arxiv": "http://arxiv.org/schemas/atom"}


class ArxivRefused(FetchError):
    """arXiv answered with an error entry (HTTP 400, `<title>Error</title>`)."""

    def __init__(self, what: str, reason: str):
        super().__init__(f"{what}: {reason}")
        self.reason = reason


def parse_feed(text: str, what: str) -> tuple[int, list[ET.Element]]:
    """(totalResults, entries) of a feed; an error entry raises ArxivRefused with its text."""
    try:
        feed = ET.fromstring(text.encode("utf-8"))
    except ET.ParseError as error:
        raise malformed(what, error) from None
    entries = feed.findall("atom:entry", NS)
    for entry in entries:
        if "/api/errors" in (entry.findtext("atom:id", "", NS)):
            raise ArxivRefused(what, tidy(entry.findtext("atom:summary", "", NS)) or "error")
    total = feed.findtext("os:totalResults", None, NS)
    return (int(total) if total and total.strip().isdigit() else len(entries)), entries


def entry_id(entry: ET.Element) -> str | None:
    """The versioned arXiv id of an entry, from its `<id>http://arxiv.org/abs/ID</id>`."""
    return normalize_arxiv_id(entry.findtext("atom:id", "", NS))


def parse_entry(entry: ET.Element, retrieved_at: str = "", cached: bool = False) -> Work:
    """A Work from one Atom entry. Its DOI is the journal's when arXiv knows it, else the
    arXiv DataCite DOI (10.48550/arxiv.ID), so the same paper from OpenAlex is a duplicate."""
    arxiv_id = entry_id(entry)
    if arxiv_id is None:
        raise ValueError(f"entry id {entry.findtext('atom:id', '', NS)!r} is not an arXiv id")
    published = entry.findtext("atom:published", "", NS).strip()
    return Work(
        source=NAME, key=arxiv_id,
        doi=normalize_doi(entry.findtext("arxiv:doi", None, NS)) or arxiv_doi(arxiv_id),
        title=tidy(entry.findtext("atom:title", None, NS)),
        abstract=tidy(entry.findtext("atom:summary", None, NS)),
        year=int(published[:4]) if published[:4].isdigit() else None,
        authors=tuple(filter(None, (tidy(a.findtext("atom:name", None, NS))
                                    for a in entry.findall("atom:author", NS)))),
        journal=tidy(entry.findtext("arxiv:journal_ref", None, NS)) or "arXiv",
        url=f"https://arxiv.org/abs/{arxiv_id}", retrieved_at=retrieved_at, cached=cached)


def _works(reply, what: str) -> tuple[int, list[Work]]:
    total, entries = parse_feed(reply.text, what)
    try:
        return total, [parse_entry(e, reply.retrieved_at, reply.from_cache) for e in entries]
    except (AttributeError, TypeError, ValueError) as error:
        raise malformed(what, error) from None


def lookup(client: ApiClient, ids: list[str]) -> Iterator[Work | Missing]:
    """Works for arXiv ids, up to 100 per request; an id with a version gets that version."""
    for start in range(0, len(ids), IDS_PER_REQUEST):
        batch = ids[start : start + IDS_PER_REQUEST]
        what = f"{NAME}: {','.join(batch)}"
        params = {"search_query": "", "id_list": ",".join(batch), "start": 0,
                  "max_results": len(batch)}
        reply = client.get(NAME, "/query", params, what)
        try:
            works = _works(reply, what)[1]
        except ArxivRefused as refusal:
            yield from (Missing(NAME, i, f"refused: {refusal.reason}") for i in batch)
            continue
        yield from _matched(batch, works)


def _matched(asked: list[str], works: list[Work]) -> Iterator[Work | Missing]:
    """The works in the order asked; an id without a work is a Missing."""
    by_id = {w.key: w for w in works} | {arxiv_base_id(w.key): w for w in works}
    for arxiv_id in asked:
        work = by_id.get(arxiv_id)
        yield work if work else Missing(NAME, arxiv_id, "not found")


def search_query(query: Query) -> str:
    """arXiv's search_query: the words as given (arXiv syntax allowed), `ti:` with --title,
    and a submittedDate range for --since/--until."""
    text = f'ti:"{query.text}"' if query.title_only else query.text
    if not (query.since or query.until):
        return text
    low = (query.since or "1991-01-01").replace("-", "") + "0000"
    high = (query.until or "9999-12-31").replace("-", "") + "2359"
    return f"({text}) AND submittedDate:[{low} TO {high}]"


def search(client: ApiClient, query: Query) -> Iterator[Work]:
    """Up to `query.limit` works, page by page (`start`), sorted by relevance."""
    got, what = 0, f"{NAME}: search {query.text!r}"
    params = {"search_query": search_query(query), "sortBy": "relevance",
              "sortOrder": "descending", "start": 0}
    while True:
        params["max_results"] = min(query.limit - got, PAGE_SIZE)
        reply = client.get(NAME, "/query", params, what)
        total, works = _works(reply, what)
        for work in works[: query.limit - got]:
            yield work
            got += 1
        params["start"] += len(works)
        if got >= query.limit or not works or params["start"] >= total:
            return
