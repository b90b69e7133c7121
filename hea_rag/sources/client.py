"""The one HTTP client of `hea-rag fetch`: polite headers, bounded retries, a timeout, a disk cache.

requests + requests-cache: urllib3's Retry already does backoff on 429/5xx and honours
Retry-After, and requests-cache keeps every answer in one SQLite file under the user cache
folder, serving it again while fresh and, when the network is down, even when stale.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

from hea_rag import __version__, config
from hea_rag.errors import HeaRagError

POLITE_POOLS = ("openalex", "crossref")  # APIs that serve faster when told who is asking
RETRY_STATUSES = (429, 500, 502, 503, 504)
CACHED_STATUSES = (200, 400, 404)  # answers worth keeping: works, and ids that have none


class FetchError(HeaRagError):
    """A literature API gave no usable answer; the message names the API and what was asked."""


class Unreachable(FetchError):
    """No answer at all: no network, a refused connection, a timeout."""


@dataclass(frozen=True)
class ClientSettings:
    """How the APIs are asked. `from_env` reads the environment; the defaults are in config."""

    urls: dict[str, str] = field(default_factory=lambda: dict(config.DEFAULT_API_URLS))
    mailto: str | None = None
    cache_dir: Path | None = None  # None: the user cache folder
    refresh: bool = False  # ask again, whatever the cache holds
    timeout: float = config.DEFAULT_HTTP_TIMEOUT
    retries: int = config.DEFAULT_HTTP_RETRIES
    backoff: float = config.DEFAULT_HTTP_BACKOFF
    arxiv_interval: float = config.DEFAULT_ARXIV_INTERVAL

    @classmethod
    def from_env(cls, mailto: str | None = None, refresh: bool = False) -> ClientSettings:
        env = os.environ
        urls = {name: env.get(f"HEA_RAG_{name.upper()}_URL") or url
                for name, url in config.DEFAULT_API_URLS.items()}
        cache = env.get(config.ENV_HTTP_CACHE)
        return cls(
            urls=urls, mailto=mailto or env.get(config.ENV_MAILTO) or None,
            cache_dir=Path(cache) if cache else None, refresh=refresh,
            timeout=_number(config.ENV_HTTP_TIMEOUT, config.DEFAULT_HTTP_TIMEOUT),
            retries=int(_number(config.ENV_HTTP_RETRIES, config.DEFAULT_HTTP_RETRIES)),
            backoff=_number(config.ENV_HTTP_BACKOFF, config.DEFAULT_HTTP_BACKOFF),
            arxiv_interval=_number(config.ENV_ARXIV_INTERVAL, config.DEFAULT_ARXIV_INTERVAL),
        )

    def cache_path(self) -> Path:
        if self.cache_dir is not None:
            return self.cache_dir
        from platformdirs import user_cache_dir

        return Path(user_cache_dir("hea-rag")) / "http"


def _number(name: str, default: float) -> float:
    value = os.environ.get(name)
    try:
        return float(value) if value else default
    except ValueError:
        raise FetchError(f"{name}={value!r} is not a number") from None


@dataclass(frozen=True)
class Reply:
    """One answer: status, body as text, whether it came from the cache, and when it was got."""

    status: int
    text: str
    from_cache: bool
    retrieved_at: str

    def json(self, what: str) -> object:
        import json

        try:
            return json.loads(self.text)
        except ValueError as error:
            raise FetchError(f"{what}: malformed response (not JSON: {error})") from None


def user_agent(mailto: str | None) -> str:
    contact = f"; mailto:{mailto}" if mailto else ""
    return f"hea-rag/{__version__} (literature fetch for a local paper index{contact})"


class ApiClient:
    """GETs to the literature APIs, each through the cache, retries and timeout."""

    def __init__(self, settings: ClientSettings):
        self.settings = settings
        self.session = _session(settings)
        self._last_sent: dict[str, float] = {}

    def get(self, source: str, path: str, params: dict, what: str) -> Reply:
        """GET `path` of `source`'s base URL. `what` names the request in errors."""
        url = self.settings.urls[source].rstrip("/") + path
        params = {key: value for key, value in params.items() if value is not None}
        if self.settings.mailto and source in POLITE_POOLS:
            params["mailto"] = self.settings.mailto
        self._wait_turn(source)
        response = self._send(url, params, what)
        if not response.from_cache:
            self._last_sent[source] = time.monotonic()
        if response.status_code in RETRY_STATUSES:
            raise FetchError(f"{what}: HTTP {response.status_code} {response.reason} "
                             f"after {self.settings.retries} retries")
        return Reply(response.status_code, response.text, response.from_cache, self._when(response))

    def _send(self, url: str, params: dict, what: str):
        import requests

        try:
            return self.session.get(url, params=params, timeout=self.settings.timeout,
                                    force_refresh=self.settings.refresh)
        except (requests.ConnectionError, requests.Timeout) as error:
            raise Unreachable(f"cannot reach {urlsplit(url).netloc} ({self._reason(error)})") from None
        except requests.RequestException as error:
            raise FetchError(f"{what}: {type(error).__name__}: {error}".splitlines()[0]) from None

    def _reason(self, error: Exception) -> str:
        """The cause of a failed connection in a few words, not urllib3's nested repr."""
        from urllib3.exceptions import NameResolutionError, NewConnectionError, TimeoutError

        cause = getattr(error.args[0], "reason", error.args[0]) if error.args else error
        if isinstance(cause, NameResolutionError):  # checked first: both subclass TimeoutError
            return "host name not resolved"
        if isinstance(cause, NewConnectionError):
            return str(cause).rsplit("] ", 1)[-1].lower()
        if isinstance(cause, TimeoutError) or "timed out" in str(cause).lower():
            return f"no answer within {self.settings.timeout:g}s"
        return str(cause).splitlines()[0]

    def _wait_turn(self, source: str) -> None:
        """arXiv asks for a pause between requests; the others have rate limits we stay under."""
        last = self._last_sent.get(source)
        if source == "arxiv" and last is not None:
            time.sleep(max(0.0, last + self.settings.arxiv_interval - time.monotonic()))

    def _when(self, response) -> str:
        """When the answer was got: the time stored with it in the cache, so that a rerun
        served from the cache writes the same records."""
        key = getattr(response, "cache_key", None)
        stored = self.session.cache.get_response(key) if key and not response.from_cache else None
        return _utc_text(getattr(stored or response, "created_at", None))

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _utc_text(created: datetime | None) -> str:
    created = created or datetime.now(timezone.utc)
    if created.tzinfo is None:  # requests-cache stores UTC without a zone
        created = created.replace(tzinfo=timezone.utc)
    return created.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _session(settings: ClientSettings):
    from requests.adapters import HTTPAdapter
    from requests_cache import CachedSession

    # requests-cache logs a traceback when it falls back on a stale answer; that is expected here
    logging.getLogger("requests_cache").addHandler(logging.NullHandler())
    folder = settings.cache_path()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FetchError(f"{folder}: cannot create the HTTP cache folder ({error.strerror}); "
                         f"set {config.ENV_HTTP_CACHE}") from None
    session = CachedSession(
        str(folder / "responses"), backend="sqlite", expire_after=timedelta(days=config.HTTP_CACHE_DAYS),
        allowable_codes=CACHED_STATUSES, stale_if_error=True, ignored_parameters=["mailto"])
    adapter = HTTPAdapter(max_retries=_retry(settings))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = user_agent(settings.mailto)
    return session


def _retry(settings: ClientSettings):
    from urllib3.util.retry import Retry

    class CappedRetry(Retry):
        """urllib3's Retry, with a server's Retry-After cut to MAX_RETRY_AFTER seconds."""

        def parse_retry_after(self, retry_after: str) -> float:
            return min(super().parse_retry_after(retry_after), config.MAX_RETRY_AFTER)

    return CappedRetry(total=settings.retries, connect=1, read=1, status=settings.retries,
                       status_forcelist=RETRY_STATUSES, backoff_factor=settings.backoff,
                       respect_retry_after_header=True, raise_on_status=False,
                       allowed_methods=frozenset({"GET"}))
