"""Crossref (api.crossref.org): works by DOI and searches; JATS/HTML abstracts made plain text."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import quote

from hea_rag.ingest.doi import normalize_doi
from hea_rag.ingest.records import normalize_text
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

NAME = "crossref"
PAGE_SIZE = 100
# Elements that end a run of words (JATS with or without its `jats:` prefix, and HTML). Section
# titles ("Significance", "Abstract") are kept as words, as OpenAlex keeps them. Inline markup
# (sub, sup, italic) joins its text to its neighbours: Al<sub>0.3</sub>CoCrFeNi -> Al0.3CoCrFeNi.
_BLOCKS = frozenset({"p", "title", "sec", "abstract", "trans-abstract", "label", "caption", "list",
                     "list-item", "br", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6"})


class _PlainText(HTMLParser):
    """Text of JATS/HTML markup. Entities stay as written, for `tidy` to decode."""

    def __init__(self):
        super().__init__(convert_charrefs=False)
        self.parts: list[str] = []

    def _boundary(self, tag: str) -> None:
        if tag.rpartition(":")[2] in _BLOCKS:
            self.parts.append(" ")

    def handle_starttag(self, tag, attrs):
        self._boundary(tag)

    def handle_endtag(self, tag):
        self._boundary(tag)

    def handle_startendtag(self, tag, attrs):
        self._boundary(tag)

    def handle_data(self, data):
        self.parts.append(data)

    def handle_entityref(self, name):
        self.parts.append(f"&{name};")

    def handle_charref(self, name):
        self.parts.append(f"&#{name};")


def strip_markup(text: str | None) -> str | None:
    """`text` without its tags, whitespace normalized; entities left for `tidy`."""
    if not text:
        return None
    parser = _PlainText()
    parser.feed(str(text))
    parser.close()
    return normalize_text("".join(parser.parts)) or None


def _first(values: object) -> object:
    return values[0] if isinstance(values, list) and values else None


def _year(obj: dict) -> int | None:
    """The first year of issued, published, published-print, published-online (some are null)."""
    for key in ("issued", "published", "published-print", "published-online"):
        first = _first((obj.get(key) or {}).get("date-parts"))
        year = _first(first)
        if year is not None:
            return int(year)
    return None


def _author(person: dict) -> str | None:
    name = " ".join(part for part in (person.get("given"), person.get("family")) if part)
    return tidy(name or person.get("name"))


def parse_work(obj: dict, retrieved_at: str = "", cached: bool = False) -> Work:
    """A Work from one Crossref work (`message` of /works/{doi}, or an item of a search)."""
    doi = normalize_doi(obj.get("DOI"))
    return Work(
        source=NAME, key=doi or str(obj.get("URL")), doi=doi,
        title=tidy(strip_markup(_first(obj.get("title")))),
        abstract=tidy(strip_markup(obj.get("abstract"))), year=_year(obj),
        authors=tuple(filter(None, (_author(a) for a in obj.get("author") or []))),
        journal=tidy(_first(obj.get("container-title"))), url=obj.get("URL"),
        retrieved_at=retrieved_at, cached=cached)


def _message(reply, what: str) -> dict:
    try:
        message = reply.json(what)["message"]
        if not isinstance(message, dict):
            raise TypeError(f"message is a {type(message).__name__}")
        return message
    except (KeyError, TypeError) as error:
        raise malformed(what, error) from None


def _parsed(obj: object, what: str, reply) -> Work:
    return parsed_work(parse_work, obj, what, reply)


def lookup(client: ApiClient, dois: list[str]) -> Iterator[Work | Missing]:
    """One work per DOI at /works/{DOI}; a 404 (plain text "Resource not found.") is a Missing."""
    return lookup_dois(client, NAME, dois, lambda doi: "/works/" + quote(doi, safe=""),
                       lambda reply, what: _parsed(_message(reply, what), what, reply))


def search_params(query: Query) -> dict:
    """`query=` (all fields) or `query.title=` with --title; dates as pub-date filters."""
    field = "query.title" if query.title_only else "query"
    filters = [f"from-pub-date:{query.since}"] if query.since else []
    filters += [f"until-pub-date:{query.until}"] if query.until else []
    return {field: query.text, "rows": min(query.limit, PAGE_SIZE), "cursor": "*",
            "filter": ",".join(filters) or None}


def search(client: ApiClient, query: Query) -> Iterator[Work]:
    """Up to `query.limit` works, following Crossref's `next-cursor` (deep paging)."""
    return cursor_search(client, NAME, query, search_params(query), _items_page, parse_work)


def _items_page(reply, what: str) -> tuple[list, str | None]:
    message = _message(reply, what)
    return list(message.get("items") or []), message.get("next-cursor")
