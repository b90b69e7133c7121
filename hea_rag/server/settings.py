"""What `hea-rag serve` can be told, with its defaults: the one source for the CLI and the app."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from hea_rag.errors import HeaRagError

ENV_TOKEN = "HEA_RAG_TOKEN"
LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}
# what an upload may be, by extension (the readers' formats); the content is checked against it
UPLOAD_TYPES = (".csv", ".tsv", ".json", ".jsonl", ".bib", ".ris", ".txt", ".md", ".pdf")


@dataclass(frozen=True)
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None  # required on every request when set; required to bind elsewhere
    queue_size: int = 8  # questions waiting for the model; one more is answered 503
    search_threads: int = 2  # searches run here, never behind a generation
    max_upload_bytes: int = 20 * 1024 * 1024  # one upload request, all its files together
    max_upload_files: int = 20
    pending_uploads: int = 2  # uploads waiting for the writer; one more is answered 503
    lock_timeout: float = 30.0  # seconds an upload waits for another writer (e.g. the CLI)
    graceful_seconds: int = 3  # on Ctrl-C, how long open answers may finish


class BindingRefused(HeaRagError):
    """Binding beyond this machine without a token."""

    exit_code = 2


def is_loopback(host: str) -> bool:
    """Whether `host` only reaches this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(settings: ServeSettings) -> None:
    """Anyone on the network could ask, upload and fill the queue: that needs a token."""
    if not is_loopback(settings.host) and not settings.token:
        raise BindingRefused(f"binding to {settings.host} lets other machines in: give --token "
                             f"(or set {ENV_TOKEN}), or keep the default 127.0.0.1")
