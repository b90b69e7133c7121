"""The index as the server sees it: always the live generation, one reader per thread.

A writer (an upload here, or `hea-rag index` in another process) commits a new generation by
switching manifest.json. Each request asks for a retriever; when the manifest names a newer
generation than the thread's reader holds, the thread opens that one. So a new generation is
picked up without a restart, and a search already running finishes on the one it started on.
SQLite connections belong to the thread that opened them, hence one reader per thread.
"""

from __future__ import annotations

import threading
from pathlib import Path

from hea_rag.retrieve import Retriever
from hea_rag.store import IndexReader, Manifest


class LockedEmbedder:
    """The embedder shared by every thread, one encode at a time: its tokenizer and the
    precision switch around encoding are not safe to use from two threads at once."""

    def __init__(self, embedder):
        self._embedder = embedder
        self._lock = threading.Lock()
        self.name = embedder.name
        self.backend = getattr(embedder, "backend", "torch")  # the Retriever checks it

    def encode(self, texts: list[str], batch_size: int = 32):
        with self._lock:
            return self._embedder.encode(texts, batch_size)


class LiveIndex:
    """Retrievers over the live generation of the index at `folder`, for the calling thread."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._local = threading.local()
        self._embedders: dict[tuple[str, str], LockedEmbedder] = {}
        self._loading = threading.Lock()

    def retriever(self) -> Retriever:
        """A retriever on the newest generation (IndexMissingError when there is no index)."""
        live = Manifest.load(self.folder).generation
        reader = getattr(self._local, "reader", None)
        if reader is None or reader.manifest.generation != live:
            if reader is not None:
                reader.close()
                self._local.reader = None
            reader = self._local.reader = IndexReader(self.folder)
        return Retriever(reader, self.embedder(reader.manifest))

    def embedder(self, manifest: Manifest) -> LockedEmbedder:
        """The embedder (and backend) the index was built with, loaded once; again only if a
        rebuild changed them."""
        key = (manifest.embedder, manifest.embedder_backend)
        with self._loading:
            if key not in self._embedders:
                from hea_rag.embedder import load_embedder

                self._embedders[key] = LockedEmbedder(load_embedder(*key))
            return self._embedders[key]

    def counts(self) -> dict[str, int]:
        """Papers and passages in the live generation; zeros when there is no index yet."""
        from hea_rag.errors import IndexMissingError

        try:
            return dict(Manifest.load(self.folder).counts)
        except IndexMissingError:
            return {"papers": 0, "passages": 0}
