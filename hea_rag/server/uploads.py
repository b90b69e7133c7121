"""Papers uploaded to the server: size-limited, checked against their extension, and written to a
fresh temporary folder under names the server chooses. The client's file name is only a label:
it never becomes a path. The files then go through the same readers and writer as `hea-rag index`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from hea_rag.ingest import Paper, read_path
from hea_rag.ingest.common import decode
from hea_rag.ingest.csv_reader import looks_like_csv
from hea_rag.errors import InputError
from hea_rag.indexer import RecordSource
from hea_rag.server.errors import RequestError
from hea_rag.server.settings import UPLOAD_TYPES, ServeSettings

FORM_FIELD = "files"
FORMAT_NAMES = {".csv": "CSV with an abstract column", ".tsv": "TSV with an abstract column",
                ".json": "JSON", ".jsonl": "JSON Lines", ".bib": "BibTeX", ".ris": "RIS",
                ".txt": "text", ".md": "text", ".pdf": "PDF"}
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class SavedUpload:
    name: str  # the client's file name, for messages and as the papers' origin
    path: Path  # where the server wrote it


def limited_receive(receive, limit: int):
    """`receive` that fails once the request body passes `limit` bytes, for bodies sent without
    a Content-Length (or with a false one)."""
    seen = 0

    async def wrapped():
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise too_large(limit)
        return message

    return wrapped


def too_large(limit: int) -> RequestError:
    size = f"{limit / 2**20:g} MB" if limit >= 2**20 else f"{limit} bytes"
    return RequestError(413, f"the upload is larger than {size}")


async def read_form_files(request, settings: ServeSettings) -> list:
    """The uploaded files of a multipart request, within the size and count limits."""
    from starlette.datastructures import UploadFile
    from starlette.requests import Request

    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.max_upload_bytes:
        raise too_large(settings.max_upload_bytes)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise RequestError(415, f"send the files as multipart/form-data, field `{FORM_FIELD}`")
    limited = Request(request.scope, limited_receive(request.receive, settings.max_upload_bytes))
    form = await limited.form(max_files=settings.max_upload_files, max_fields=10)
    files = [item for item in form.getlist(FORM_FIELD) if isinstance(item, UploadFile)]
    if not files:
        raise RequestError(400, f"no files: send them in the multipart field `{FORM_FIELD}`")
    return files


def display_name(filename: str | None, number: int) -> str:
    """The last part of the client's file name, without control characters; a label only."""
    name = _UNSAFE.sub("", PurePosixPath((filename or "").replace("\\", "/")).name)[:120]
    return name if name.strip(". ") else f"upload-{number}"


def save_uploads(files, folder: Path) -> list[SavedUpload]:
    """Check each file and write it into `folder` as upload-N.EXT; RequestError for the first
    file that is not what its extension says."""
    saved = []
    for number, upload in enumerate(files, start=1):
        name = display_name(upload.filename, number)
        extension = PurePosixPath(name).suffix.lower()
        if extension not in UPLOAD_TYPES:
            raise RequestError(415, f"{name}: unsupported file type {extension or '(none)'}; "
                                    f"send {', '.join(UPLOAD_TYPES)}")
        upload.file.seek(0)
        data = upload.file.read()
        check_content(name, extension, data)
        path = folder / f"upload-{number}{extension}"
        path.write_bytes(data)
        saved.append(SavedUpload(name, path))
    return saved


def check_content(name: str, extension: str, data: bytes) -> None:
    """RequestError (415) unless `data` is what `extension` says; (400) if it is empty."""
    if not data.strip():
        raise RequestError(400, f"{name}: empty file")
    if extension == ".pdf":
        if b"%PDF-" not in data[:1024]:
            raise RequestError(415, f"{name}: not a PDF (no %PDF- header)")
        return
    try:
        text = decode(data, name)
    except InputError as error:
        raise RequestError(415, str(error)) from None
    if "\x00" in text:
        raise RequestError(415, f"{name}: binary data, not {FORMAT_NAMES[extension]}")
    if not _looks_like(extension, text):
        raise RequestError(415, f"{name}: the content is not {FORMAT_NAMES[extension]}")


def _looks_like(extension: str, text: str) -> bool:
    head = text.lstrip("\ufeff \t\r\n")
    if extension in (".csv", ".tsv"):
        return looks_like_csv(head)
    if extension in (".json", ".jsonl"):
        return head.startswith(("{", "["))
    if extension == ".bib":
        return re.search(r"@\w+\s*[{(]", text) is not None
    if extension == ".ris":
        return re.search(r"^TY  - ", text, re.MULTILINE) is not None
    return True  # .txt and .md: any text


def upload_records(upload: SavedUpload) -> RecordSource:
    """The upload's records, as `index` reads them, named by the client's file name instead of
    the temporary path (in the summary and in each paper's origin)."""
    temporary = str(upload.path)

    def renamed():
        for record in read_path(temporary):
            if isinstance(record, Paper):
                yield replace(record, origin=record.origin.replace(temporary, upload.name))
            else:
                yield replace(record, where=record.where.replace(temporary, upload.name))

    return RecordSource(upload.name, renamed())
