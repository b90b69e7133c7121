"""Real HTTP servers on 127.0.0.1 for the literature-API tests and scripts/bench_fetch.py.

`LocalServer` answers every GET with whatever its `respond(path, query)` function returns.
`replay_server` is one whose answers are the recorded bodies of ../shared/data/real_world/api,
served as they are (status, content type, bytes) at their recorded paths, each API under its own
prefix: /openalex, /crossref, /arxiv.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

Answer = tuple[int, dict[str, str], bytes]  # status, headers, body
PREFIXES = {"api.openalex.org": "/openalex", "api.crossref.org": "/crossref",
            "export.arxiv.org": "/arxiv"}
# Query parameters that choose how much or in which order, not which works: a recorded body is
# served whatever the client asks of these. The first page of a cursor walk (`cursor=*`) is the
# same as an unpaged request.
FREE_PARAMS = {"mailto", "per-page", "rows", "sortBy", "sortOrder", "start", "max_results", "select"}


@dataclass(frozen=True)
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 (a free port); `seen` lists the requests it got."""

    def __init__(self, respond: Callable[[str, dict[str, str]], Answer]):
        self.respond = respond
        self.seen: list[Seen] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def urls(self) -> dict[str, str]:
        """The HEA_RAG_*_URL values that point each API at this server."""
        return {"HEA_RAG_OPENALEX_URL": self.base + "/openalex",
                "HEA_RAG_CROSSREF_URL": self.base + "/crossref",
                "HEA_RAG_ARXIV_URL": self.base + "/arxiv/api"}

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the name http.server calls
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query))
                server.seen.append(Seen(parts.path, query, dict(self.headers)))
                status, headers, body = server.respond(parts.path, query)
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # quiet: pytest shows failures, not access logs
                pass

        return Handler


def _key(path: str, query: dict[str, str]) -> tuple[str, frozenset]:
    chosen = {k: v for k, v in query.items()
              if v and k not in FREE_PARAMS and not (k == "cursor" and v == "*")}
    return unquote(path), frozenset(chosen.items())


def recorded_answers(api_dir: Path) -> dict[tuple[str, frozenset], Answer]:
    """(path, identifying params) -> the recorded answer, for every body in records.json."""
    answers = {}
    for record in json.loads((api_dir / "records.json").read_text(encoding="utf-8")):
        uri = urlsplit(record["uri"])
        body = (api_dir.parent / record["file"]).read_bytes()
        key = _key(PREFIXES[uri.netloc] + uri.path, dict(parse_qsl(uri.query)))
        answers[key] = (record["status"], {"Content-Type": record["content_type"]}, body)
    return answers


def replay_server(api_dir: Path) -> LocalServer:
    """A LocalServer answering with the recorded bodies. Anything unrecorded gets a 501, which
    the client reports as an error (a 404 would pass for a DOI that is not found)."""
    answers = recorded_answers(api_dir)

    def respond(path: str, query: dict[str, str]) -> Answer:
        unrecorded = (501, {"Content-Type": "text/plain"}, b"not recorded")
        return answers.get(_key(path, query), unrecorded)

    return LocalServer(respond)


def recorded_title_search(api_dir: Path, file_part: str) -> str:
    """The title a recorded OpenAlex title search asked for (read from records.json at run time,
    so the recorded data stays in ../shared)."""
    import json
    from urllib.parse import parse_qs, urlsplit

    records = json.loads((api_dir / "records.json").read_text(encoding="utf-8"))
    uri = next(r["uri"] for r in records if file_part in r["file"] and "openalex" in r["file"])
    return parse_qs(urlsplit(uri).query)["filter"][0].removeprefix("title.search:")
