"""Defaults and the environment variables that override them: one place for both."""

from __future__ import annotations

import os
from pathlib import Path

ENV_INDEX = "HEA_RAG_INDEX"
ENV_EMBEDDER = "HEA_RAG_EMBEDDER"
ENV_MODEL = "HEA_RAG_MODEL"
ENV_DEBUG = "HEA_RAG_DEBUG"
ENV_SHARED = "HEA_RAG_SHARED"  # where tests and benchmarks find ../shared

DEFAULT_INDEX = Path("index")
DEFAULT_K = 5
DEFAULT_MODEL = "microsoft/phi-2"
DEFAULT_LOCK_TIMEOUT = 600.0

# `hea-rag fetch`: the literature APIs, and how politely they are asked.
ENV_OPENALEX_URL = "HEA_RAG_OPENALEX_URL"
ENV_CROSSREF_URL = "HEA_RAG_CROSSREF_URL"
ENV_ARXIV_URL = "HEA_RAG_ARXIV_URL"
ENV_MAILTO = "HEA_RAG_MAILTO"  # an address for the OpenAlex and Crossref "polite pools"
ENV_HTTP_CACHE = "HEA_RAG_HTTP_CACHE"  # folder of the on-disk HTTP cache
ENV_HTTP_TIMEOUT = "HEA_RAG_HTTP_TIMEOUT"  # seconds to wait for a connection or an answer
ENV_HTTP_RETRIES = "HEA_RAG_HTTP_RETRIES"  # retries after a 429 or 5xx answer
ENV_HTTP_BACKOFF = "HEA_RAG_HTTP_BACKOFF"  # seconds; the waits between retries are 2, 4, 8... times it
ENV_ARXIV_INTERVAL = "HEA_RAG_ARXIV_INTERVAL"  # seconds between two requests to arXiv
DEFAULT_API_URLS = {
    "openalex": "https://api.openalex.org",
    "crossref": "https://api.crossref.org",
    "arxiv": "https://export.arxiv.org/api",
}
DEFAULT_FETCH_LIMIT = 100
DEFAULT_HTTP_TIMEOUT = 30.0
DEFAULT_HTTP_RETRIES = 4
DEFAULT_HTTP_BACKOFF = 1.0
DEFAULT_ARXIV_INTERVAL = 3.0  # arXiv's API terms ask for one request every three seconds
MAX_RETRY_AFTER = 120  # seconds: a server's longer Retry-After is cut to this
HTTP_CACHE_DAYS = 1  # after this, a cached answer is asked again (and still used if offline)


def debug_enabled() -> bool:
    return os.environ.get(ENV_DEBUG, "").lower() in {"1", "true", "yes"}


def shared_dir(project_root: Path) -> Path:
    """The read-only shared data folder: $HEA_RAG_SHARED, else `../shared` beside the project."""
    return Path(os.environ.get(ENV_SHARED) or project_root.parent / "shared")
