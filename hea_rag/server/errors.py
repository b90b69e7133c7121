"""Every failure as an HTTP status and a one-line message; never a traceback to the client."""

from __future__ import annotations

from hea_rag.errors import (
    HeaRagError,
    IndexBusyError,
    IndexDamagedError,
    IndexMismatchError,
    IndexMissingError,
    IndexNotWritableError,
    InputError,
    ModelUnavailableError,
)


class RequestError(HeaRagError):
    """A request the server refuses, with the HTTP status that says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


STATUS = [  # the first class an error is an instance of gives its status
    (RequestError, None),
    (InputError, 400),
    (IndexMissingError, 404),
    (IndexMismatchError, 409),
    (IndexBusyError, 503),
    (IndexNotWritableError, 500),
    (IndexDamagedError, 500),
    (ModelUnavailableError, 500),
    (HeaRagError, 400),
]


def describe(error: BaseException) -> tuple[int, str]:
    """(status, message): an expected failure keeps its message; anything else is an internal
    error named by its type only."""
    for kind, status in STATUS:
        if isinstance(error, kind):
            return status or error.status, str(error)
    return 500, f"internal error: {type(error).__name__} (see the server's log)"
