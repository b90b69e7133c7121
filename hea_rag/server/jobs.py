"""Work for the one model (or the one writer), done on its own thread, in a bounded fair queue.

A request puts a `Job` in a `FairQueue` and reads the job's events (queued, started, token,
then answer or error) from an asyncio queue; a `Worker` thread takes jobs one at a time. Clients
take turns: a client with ten questions waiting does not hold up another's first one. A full
queue refuses at once (the app answers 503 with Retry-After) instead of letting waits grow.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger("hea_rag.server")


class QueueFull(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"the queue is full; retry in {retry_after} s")
        self.retry_after = retry_after


class JobCancelled(Exception):
    """Raised inside a running job whose client went away, to stop its work early."""


class Job:
    """One piece of work and the events it sends back to the request that queued it."""

    def __init__(self, work: Callable[[Job], Any], loop: asyncio.AbstractEventLoop):
        self.work = work
        self.events: asyncio.Queue = asyncio.Queue()
        self.cancelled = False
        self._loop = loop

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        """Send an event to the request (from any thread). A running job stops here once its
        client has gone."""
        if self.cancelled and kind in ("token", "row"):
            raise JobCancelled
        try:
            self._loop.call_soon_threadsafe(self.events.put_nowait, (kind, data))
        except RuntimeError:  # the event loop is closed: the server is stopping
            self.cancelled = True


class FairQueue:
    """Jobs waiting, at most `capacity`, taken round-robin across clients (FIFO within one)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._by_client: dict[str, deque[Job]] = {}  # order = whose turn comes next
        self._size = 0
        self._closed = False
        self._changed = threading.Condition()

    def put(self, client: str, job: Job, retry_after: int) -> int:
        """Queue `job`; its position (1 = next). QueueFull when `capacity` jobs wait already."""
        with self._changed:
            if self._closed or self._size >= self.capacity:
                raise QueueFull(retry_after)
            jobs = self._by_client.setdefault(client, deque())
            jobs.append(job)
            self._size += 1
            self._changed.notify()
            return self._position(client, len(jobs))

    def _position(self, client: str, nth: int) -> int:
        """Where the `nth` job of `client` stands: before it go the others' first `nth` jobs
        (only `nth - 1` of those whose turn comes after this client's)."""
        ahead, after = 0, False
        for other, jobs in self._by_client.items():
            if other == client:
                after = True
                continue
            ahead += min(len(jobs), nth - 1 if after else nth)
        return ahead + nth

    def take(self) -> Job | None:
        """The next job, waiting for one; None once closed."""
        with self._changed:
            while not self._size and not self._closed:
                self._changed.wait()
            if self._closed:
                return None
            client = next(iter(self._by_client))
            jobs = self._by_client.pop(client)
            job = jobs.popleft()
            if jobs:  # this client's next job goes to the back of the line
                self._by_client[client] = jobs
            self._size -= 1
            return job

    def discard(self, job: Job) -> None:
        """Drop a job whose client went away before its turn."""
        with self._changed:
            for client, jobs in list(self._by_client.items()):
                if job in jobs:
                    jobs.remove(job)
                    self._size -= 1
                    if not jobs:
                        del self._by_client[client]

    def close(self) -> list[Job]:
        """Refuse new jobs; wake the worker; return the jobs that were still waiting."""
        with self._changed:
            self._closed = True
            left = [job for jobs in self._by_client.values() for job in jobs]
            self._by_client.clear()
            self._size = 0
            self._changed.notify_all()
            return left

    def __len__(self) -> int:
        return self._size


class Worker:
    """The thread that runs a queue's jobs one at a time, and how long they take."""

    def __init__(self, name: str, capacity: int, first_guess: float = 2.0):
        self.queue = FairQueue(capacity)
        self.busy = False
        self._mean_seconds = first_guess  # of the last jobs: for Retry-After
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, client: str, job: Job) -> int:
        position = self.queue.put(client, job, self.retry_after())
        job.emit("queued", {"position": position})
        return position

    def retry_after(self) -> int:
        """Seconds until a place is likely free: the time to clear the queue at the recent pace."""
        return max(1, round(self._mean_seconds * (len(self.queue) + 1)))

    def _run(self) -> None:
        while (job := self.queue.take()) is not None:
            if job.cancelled:
                continue
            started = time.perf_counter()
            self.busy = True
            try:
                job.emit("started", {})
                job.work(job)
            except JobCancelled:
                pass
            except Exception as error:  # noqa: BLE001 - reported to the request, the worker goes on
                job.emit("error", error_event(error))
            finally:
                self.busy = False
            self._mean_seconds = 0.8 * self._mean_seconds + 0.2 * (time.perf_counter() - started)

    def stop(self) -> None:
        for job in self.queue.close():
            job.emit("error", {"error": "the server is stopping", "status": 503})


def error_event(error: Exception) -> dict[str, Any]:
    """An error as the client sees it: the message of an expected failure, else only its type
    (the traceback goes to the server's log, never to the client)."""
    from hea_rag.server.errors import describe

    status, message = describe(error)
    if status >= 500 and message.startswith("internal error"):
        log.error("job failed", exc_info=error)
    return {"error": message, "status": status}
