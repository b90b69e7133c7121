"""DOI normalization: one spelling per DOI, so the same paper from two exports gets one id."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlsplit

# Resolver and scheme prefixes that exports put before the DOI itself.
_PREFIXES = (
    "https://doi.org/",
    "http://doi.org/",
    "https://dx.doi.org/",
    "http://dx.doi.org/",
    "doi.org/",
    "dx.doi.org/",
    "doi:",
)
# Registrant code of 4-9 digits (sub-codes like 10.1000.10/ allowed), a slash, a non-empty suffix.
_DOI = re.compile(r"10\.\d{4,9}(?:\.\d+)*/\S+")


def normalize_doi(raw: str | None) -> str | None:
    """`raw` as a bare lowercase DOI (`10.1016/j.x.2024.1`), or None when it does not look like one.

    DOIs are case-insensitive by definition, so lowercasing merges exports that differ only in case.
    """
    if not isinstance(raw, str):
        return None
    doi = unquote(raw.strip()).strip().lower()
    stripped = True
    while stripped:  # prefixes can stack, e.g. "doi: https://doi.org/10..."
        stripped = False
        for prefix in _PREFIXES:
            if doi.startswith(prefix):
                doi = doi[len(prefix):].strip()
                stripped = True
    return doi if _DOI.fullmatch(doi) else None


def doi_from_link(link: str | None) -> str | None:
    """The DOI carried by a link: Scopus's `...&doi=10.1016%2fj.x&...` query, or a doi.org URL."""
    if not isinstance(link, str) or not link.strip():
        return None
    try:
        query = parse_qs(urlsplit(link.strip()).query)
    except ValueError:  # e.g. a malformed IPv6 host; such a link carries nothing usable
        return None
    for value in query.get("doi", []):
        doi = normalize_doi(value)
        if doi:
            return doi
    return normalize_doi(link)


# arXiv identifiers: new style `2104.12255` (4 or 5 digits after the dot, since 2007) and old
# style `hep-th/9901001` or `math.CO/0601001` (the subject class is not part of the identifier),
# each with an optional version `v2`. Written bare, as `arXiv:ID`, or as an abs/pdf link.
_ARXIV_NEW = r"\d{4}\.\d{4,5}"
_ARXIV_OLD = r"[a-z]+(?:-[a-z]+)*(?:\.[a-z]{2})?/\d{7}"
_ARXIV_ID = re.compile(rf"(?P<id>{_ARXIV_NEW}|{_ARXIV_OLD})(?P<version>v\d+)?", re.I)
_ARXIV_PREFIX = re.compile(
    r"^(?:arxiv:|(?:https?://)?(?:export\.|www\.)?arxiv\.org/(?:abs|pdf)/|10\.48550/arxiv\.)", re.I)
ARXIV_DOI_PREFIX = "10.48550/arxiv."  # the DataCite DOI arXiv gives every paper


def normalize_arxiv_id(raw: str | None) -> str | None:
    """`raw` as an arXiv id (`2104.12255`, `2104.12255v1`, `hep-th/9901001`), or None.

    The version is kept when given: it names one exact text. Old-style ids lose their subject
    class (`math.CO/0601001` -> `math/0601001`), which arXiv does not count as part of the id.
    """
    if not isinstance(raw, str):
        return None
    text = _ARXIV_PREFIX.sub("", unquote(raw.strip())).removesuffix(".pdf")
    match = _ARXIV_ID.fullmatch(text)
    if not match:
        return None
    identifier = match["id"]
    if "/" in identifier:
        archive, number = identifier.split("/")
        identifier = f"{archive.split('.')[0].lower()}/{number}"
    return identifier + (match["version"] or "").lower()


def arxiv_base_id(arxiv_id: str) -> str:
    """The id without its version: `2104.12255v1` -> `2104.12255`."""
    return re.sub(r"v\d+$", "", arxiv_id)


def arxiv_doi(arxiv_id: str) -> str:
    """The DataCite DOI of an arXiv paper (versionless, lowercase like every DOI here)."""
    return (ARXIV_DOI_PREFIX + arxiv_base_id(arxiv_id)).lower()


def arxiv_id_from_doi(doi: str | None) -> str | None:
    """The arXiv id inside an arXiv DOI (`10.48550/arXiv.2312.07559`), else None."""
    doi = normalize_doi(doi)
    if not doi or not doi.startswith(ARXIV_DOI_PREFIX):
        return None
    return normalize_arxiv_id(doi[len(ARXIV_DOI_PREFIX):])
