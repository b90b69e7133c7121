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
