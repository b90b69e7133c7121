"""What the routes call: the CLI's library functions, each on the thread where it belongs.

Searches run on a small pool of their own, so they never wait behind the model; questions go to
the model's one worker thread through a bounded fair queue; uploads go to the writer's thread,
which indexes through `index_paths` (the write lock, the atomic generation switch) like `index`.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hea_rag.answer import Answerer, AskSettings
from hea_rag.errors import IndexMissingError
from hea_rag.server.jobs import Job, Worker
from hea_rag.server.live_index import LiveIndex
from hea_rag.server.settings import ServeSettings
from hea_rag.server.uploads import SavedUpload, upload_records


class Service:
    def __init__(self, index_dir: Path, generator, ask_settings: AskSettings,
                 settings: ServeSettings):
        self.index_dir = Path(index_dir)
        self.live = LiveIndex(self.index_dir)
        self.generator = generator
        self.ask_settings = ask_settings
        self.settings = settings
        self.searches = ThreadPoolExecutor(settings.search_threads, thread_name_prefix="search")
        self.model = Worker("generate", settings.queue_size)
        self.writer = Worker("index", settings.pending_uploads, first_guess=10.0)

    def warm_up(self) -> None:
        """Load the index's embedder now rather than on the first search."""
        from hea_rag.store import Manifest

        try:
            self.live.embedder(Manifest.load(self.index_dir))
        except IndexMissingError:
            pass  # no index yet: the first upload makes one

    def search(self, query: str, k: int, mode: str) -> dict[str, Any]:
        """`hea-rag search --json`'s records for `query` (on a search thread)."""
        from hea_rag.output import hit_record

        hits = self.live.retriever().search(query, k=k, mode=mode)
        return {"query": query, "hits": [hit_record(hit) for hit in hits]}

    def ask_work(self, question: str, papers: int = 1):
        """The work of one question on the model's thread: `hea-rag ask --json`'s answer, its
        text streamed as it is generated; with `papers` > 1, `ask --papers N --json`'s answers,
        each paper's row sent as it is ready."""
        def work(job: Job) -> None:
            answerer = Answerer(self.generator, self.live.retriever(), self.ask_settings)
            if papers == 1:
                on_text = lambda text: job.emit("token", {"text": text})  # noqa: E731
                return job.emit("answer", answerer.ask(question, on_text=on_text).as_dict())
            from hea_rag.answers import PaperAnswerer, PapersSettings

            each = PaperAnswerer(answerer, PapersSettings(papers))
            result = each.ask(question, on_row=lambda row: job.emit("row", row.as_dict()))
            job.emit("answer", result.as_dict())

        return work

    def index_work(self, uploads: list[SavedUpload], folder: Path):
        """The work of one upload on the writer's thread: index the files, remove the temporary
        folder whatever happens, then report the summary."""
        from hea_rag.indexer import index_paths

        def work(job: Job) -> None:
            try:
                job.emit("progress", {"stage": "reading", "done": 0, "total": 0})
                summary = index_paths(
                    [upload_records(upload) for upload in uploads], self.index_dir,
                    lock_timeout=self.settings.lock_timeout,
                    on_wait=lambda: job.emit("progress", {"stage": "waiting for the index lock"}),
                    on_progress=lambda done, total: job.emit(
                        "progress", {"stage": "embedding", "done": done, "total": total}))
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            job.emit("summary", summary_record(summary))  # once nothing of the upload is left

        return work

    def info(self) -> dict[str, Any]:
        """`hea-rag info --json`'s report, plus what this server runs."""
        from hea_rag.info import collect_info

        report = collect_info(self.index_dir)
        report["server"] = self.describe()
        return report

    def describe(self) -> dict[str, Any]:
        return {"model": self.generator.name, "adapter": self.generator.adapter,
                "queue": {"waiting": len(self.model.queue), "capacity": self.settings.queue_size,
                          "generating": self.model.busy},
                "counts": self.live.counts()}

    def close(self) -> None:
        self.model.stop()
        self.writer.stop()
        self.searches.shutdown(wait=False, cancel_futures=True)


def summary_record(summary) -> dict[str, Any]:
    """An IndexSummary as JSON: added, duplicates, passages, skipped and failed (where, reason),
    papers_total, seconds."""
    record = asdict(summary)
    record["seconds"] = round(record["seconds"], 3)
    record["load_seconds"] = round(record["load_seconds"], 3)
    return record
