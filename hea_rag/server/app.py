"""The web page and the JSON API: routes that hand each request to the Service, and stream
its events back. No pipeline logic lives here.

    POST /api/ask      {"question": ..., "stream": false}  -> `ask --json`'s answer
                       {..., "papers": N}                  -> `ask --papers N --json`'s answers
    POST /api/search   {"query": ..., "k": 5, "mode": "hybrid"} -> `search --json`'s hits
    GET  /api/info                                         -> `info --json`'s report + server
    POST /api/index    multipart `files` (?stream=true)    -> the indexing summary
    GET  /api/openapi.json                                 -> this API, described

With "stream": true (or ?stream=true) the answer comes as server-sent events: `queued`
{position}, `started`, `token` {text}... (or `row` {...} per paper), then `answer` (or `summary`,
or `error` {error}).
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from hea_rag import __version__, config
from hea_rag.errors import HeaRagError
from hea_rag.server.errors import RequestError, describe
from hea_rag.server.guard import Guard
from hea_rag.server.jobs import Job, QueueFull, Worker
from hea_rag.server.service import Service
from hea_rag.server.uploads import FORM_FIELD, read_form_files, save_uploads

HERE = Path(__file__).resolve().parent
FINAL_EVENTS = {"answer", "summary", "error"}
MOST_PAPERS = 20  # per question: each paper is a generation, and others wait behind them
log = logging.getLogger("hea_rag.server")


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=2000)
    papers: int = Field(1, ge=1, le=MOST_PAPERS,
                        description="Answer from each of the best N papers alone, as `ask "
                                    "--papers N`: rows (streamed as `row` events), then all")
    stream: bool = Field(False, description="Server-sent events: queued, started, token..., answer")


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=2000)
    k: int = Field(config.DEFAULT_K, ge=1, le=100)
    mode: Literal["hybrid", "dense", "lexical"] = "hybrid"


UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": [FORM_FIELD],
    "properties": {FORM_FIELD: {"type": "array", "items": {"type": "string", "format": "binary"}}},
}}}}}


def create_app(service: Service) -> FastAPI:
    # no /docs: FastAPI's Swagger page loads its scripts from a CDN, and the server works offline
    app = FastAPI(title="hea-rag", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json")
    app.state.service = service
    _add_error_handlers(app)
    _add_routes(app, service)
    _add_page(app, service)
    app.add_middleware(Guard, token=service.settings.token)
    return app


def _add_routes(app: FastAPI, service: Service) -> None:
    @app.post("/api/ask", summary="Answer a question, as `hea-rag ask --json`")
    async def ask(body: AskRequest, request: Request):
        work = service.ask_work(body.question.strip(), body.papers)
        job = _queue(service.model, request, work)
        return await _respond(job, body.stream, service.model)

    @app.post("/api/search", summary="Search the index, as `hea-rag search --json`")
    async def search(body: SearchRequest):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(service.searches, service.search, body.query,
                                          body.k, body.mode)

    @app.get("/api/info", summary="The index, its integrity, the machine, the server")
    async def info():
        return await asyncio.get_running_loop().run_in_executor(service.searches, service.info)

    @app.post("/api/index", summary="Add uploaded papers to the index", openapi_extra=UPLOAD_BODY)
    async def index(request: Request, stream: bool = False):
        folder = Path(tempfile.mkdtemp(prefix="hea-rag-upload-"))
        try:
            files = await read_form_files(request, service.settings)
            uploads = await asyncio.to_thread(save_uploads, files, folder)
            job = _queue(service.writer, request, service.index_work(uploads, folder))
        except BaseException:
            await asyncio.to_thread(_remove, folder)
            raise
        return await _respond(job, stream, service.writer)


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def _queue(worker: Worker, request: Request, work) -> Job:
    """A job for `work`, queued for this client; QueueFull (503) if no place is left."""
    job = Job(work, asyncio.get_running_loop())
    worker.submit(request.client.host if request.client else "-", job)
    return job


async def _respond(job: Job, stream: bool, worker: Worker):
    if stream:
        return StreamingResponse(_events(job, worker), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})
    try:
        while True:
            kind, data = await job.events.get()
            if kind == "error":
                raise RequestError(data["status"], data["error"])
            if kind in FINAL_EVENTS:
                return data
    finally:
        _forget(job, worker)


async def _events(job: Job, worker: Worker):
    """The job's events as server-sent events, until its last one; a client that leaves takes
    its job out of the queue (or stops its generation)."""
    try:
        while True:
            kind, data = await job.events.get()
            yield f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
            if kind in FINAL_EVENTS:
                return
    finally:
        _forget(job, worker)


def _forget(job: Job, worker: Worker) -> None:
    job.cancelled = True
    worker.queue.discard(job)


def _add_page(app: FastAPI, service: Service) -> None:
    from fastapi.staticfiles import StaticFiles
    from fastapi.templating import Jinja2Templates

    templates = Jinja2Templates(directory=HERE / "templates")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/", include_in_schema=False)
    async def page(request: Request):
        return templates.TemplateResponse(request, "index.html", {"server": service.describe()})


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as {"error": message}; a 503 of a full queue says when to come back."""

    @app.exception_handler(QueueFull)
    async def queue_full(request: Request, error: QueueFull):
        return JSONResponse({"error": str(error)}, 503,
                            headers={"Retry-After": str(error.retry_after)})

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError):
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid request')}"}, 422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        return JSONResponse({"error": str(error.detail)}, error.status_code,
                            headers=getattr(error, "headers", None))

    @app.exception_handler(HeaRagError)
    async def expected(request: Request, error: HeaRagError):
        status, message = describe(error)
        return JSONResponse({"error": message}, status)

    @app.exception_handler(Exception)  # the rest: logged here, a type name only to the client
    async def failure(request: Request, error: Exception):
        status, message = describe(error)
        if status >= 500:
            log.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return JSONResponse({"error": message}, status)
