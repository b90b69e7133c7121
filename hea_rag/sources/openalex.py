"""OpenAlex (api.openalex.org): works by DOI and searches, abstracts rebuilt from inverted indexes."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

from hea_rag.ingest.doi import normalize_doi
from hea_rag.sources.client import ApiClient
from hea_rag.sources.work import (
    Missing,
    Query,
    Work,
    cursor_search,
    lookup_dois,
    malformed,
    parsed_work,
    tidy,
)

NAME = "openalex"
PAGE_SIZE = 200  # the most OpenAlex returns per page


def rebuild_abstract(inverted: object) -> str | None:
    """The abstract text from OpenAlex's `abstract_inverted_index` (word -> positions)."""
    if not inverted:
        return None
    if not isinstance(inverted, dict):
        raise TypeError(f"abstract_inverted_index is a {type(inverted).__name__}")
    words = {int(position): word for word, positions in inverted.items() for position in positions}
    return " ".join(words[position] for position in sorted(words))


def parse_work(obj: dict, retrieved_at: str = "", cached: bool = False) -> Work:
    """A Work from one OpenAlex work object (single-work answer or an item of `results`)."""
    doi = normalize_doi(obj.get("doi"))
    title = obj.get("title") if obj.get("title") is not None else obj.get("display_name")
    location = obj.get("primary_location") or {}
    year = obj.get("publication_year")
    return Work(
        source=NAME, key=doi or str(obj.get("id")), doi=doi, title=tidy(title),
        abstract=tidy(rebuild_abstract(obj.get("abstract_inverted_index"))),
        year=int(year) if year is not None else None,
        authors=tuple(filter(None, (tidy((a.get("author") or {}).get("display_name"))
                                    for a in obj.get("authorships") or []))),
        journal=tidy((location.get("source") or {}).get("display_name")),
        url=location.get("landing_page_url") or obj.get("doi") or obj.get("id"),
        retrieved_at=retrieved_at, cached=cached)


def _parsed(obj: object, what: str, reply) -> Work:
    return parsed_work(parse_work, obj, what, reply)


def lookup(client: ApiClient, dois: list[str]) -> Iterator[Work | Missing]:
    """One work per DOI, at /works/https://doi.org/{DOI}; a 404 is a Missing, the rest go on."""
    return lookup_dois(client, NAME, dois,
                       lambda doi: "/works/https://doi.org/" + quote(doi, safe=""),
                       lambda reply, what: _parsed(reply.json(what), what, reply))


def search_params(query: Query) -> dict:
    """`search=` over titles, abstracts and full text, or `title.search` with --title; dates
    as publication-date filters. Commas would split OpenAlex filters, so they become spaces."""
    filters = []
    params: dict = {"per-page": min(query.limit, PAGE_SIZE), "cursor": "*"}
    if query.title_only:
        filters.append("title.search:" + query.text.replace(",", " "))
    else:
        params["search"] = query.text
    if query.since:
        filters.append(f"from_publication_date:{query.since}")
    if query.until:
        filters.append(f"to_publication_date:{query.until}")
    params["filter"] = ",".join(filters) or None
    return params


def search(client: ApiClient, query: Query) -> Iterator[Work]:
    """Up to `query.limit` works, following OpenAlex's cursor from page to page."""
    return cursor_search(client, NAME, query, search_params(query),
                         lambda reply, what: _page(reply.json(what), what), parse_work)


def _page(page: object, what: str) -> tuple[list, str | None]:
    try:
        return list(page["results"]), (page.get("meta") or {}).get("next_cursor")
    except (AttributeError, KeyError, TypeError) as error:
        raise malformed(what, error) from None
