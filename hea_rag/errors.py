"""The project's exception types. The CLI turns each into a one-line message and an exit code."""


class HeaRagError(Exception):
    """Base class: an expected failure with a message fit to show a user as it is."""

    exit_code = 1


class InputError(HeaRagError):
    """A file or row that cannot be read. The message names the file and, where known, the row."""

    def __init__(self, where: str, reason: str):
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


class IndexMissingError(HeaRagError):
    """No index at the given path."""


class IndexMismatchError(HeaRagError):
    """The index was built with settings (embedder, chunking, format) that differ from the ones asked for."""


class IndexBusyError(HeaRagError):
    """Another process holds the index's write lock for too long."""


class IndexDamagedError(HeaRagError):
    """A file of the index is missing or unreadable. `what` names the file and the damage."""

    def __init__(self, what: str, fix: str):
        super().__init__(f"{what}; {fix}")
        self.what = what


class IndexNotWritableError(HeaRagError):
    """The index folder cannot be written to (permissions, read-only file system)."""


class ModelUnavailableError(HeaRagError):
    """A model that cannot be loaded here; the message names the fix."""
