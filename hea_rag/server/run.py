"""`hea-rag serve`: load the model and the index's embedder once, then serve until Ctrl-C."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

from hea_rag.answer import AskSettings
from hea_rag.errors import HeaRagError
from hea_rag.server.settings import ServeSettings, check_binding


class PortUnavailable(HeaRagError):
    exit_code = 2


def serve(index_dir: Path, model: str, adapter: str | None, use_adapter: bool,
          quantize: str | None, ask_settings: AskSettings, settings: ServeSettings,
          on_status: Callable[[str], None]) -> None:
    """Serve the page and the API over the index at `index_dir` with `model`. Returns when
    stopped by Ctrl-C (or SIGTERM), once open answers have had `graceful_seconds` to finish."""
    check_binding(settings)
    listening = bind(settings.host, settings.port)  # a taken port fails before minutes of loading
    try:
        service = _start_service(index_dir, model, adapter, use_adapter, quantize, ask_settings,
                                 settings, on_status)
    except BaseException:
        listening.close()
        raise
    host, port = listening.getsockname()[:2]
    try:
        on_status(f"serving {index_dir} with {model} at {url(host, port)} (Ctrl-C stops)")
        _run_uvicorn(service, settings, listening)
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled
        pass
    finally:
        service.close()
        listening.close()
    on_status("stopped")


def _start_service(index_dir, model, adapter, use_adapter, quantize, ask_settings, settings,
                   on_status):
    from hea_rag.answer import open_answerer
    from hea_rag.server.service import Service

    # the same model and adapter choice as `ask`; the index is opened per request instead
    with open_answerer(index_dir, model, adapter, use_adapter, quantize, ask_settings,
                       need_retrieval=False, on_stage=on_status) as answerer:
        generator = answerer.generator
    service = Service(index_dir, generator, ask_settings, settings)
    on_status(f"loading the embedder of {index_dir}")
    service.warm_up()
    return service


def _run_uvicorn(service, settings: ServeSettings, listening: socket.socket) -> None:
    import uvicorn

    from hea_rag.server.app import create_app

    server = uvicorn.Server(uvicorn.Config(
        create_app(service), log_level="warning", access_log=False, lifespan="off",
        timeout_graceful_shutdown=settings.graceful_seconds))
    server.run(sockets=[listening])


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free one); PortUnavailable if it is taken."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM)[0]
        listening = socket.socket(family, kind, protocol)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(address)
        listening.listen(128)
    except OSError as error:
        raise PortUnavailable(f"cannot listen on {host}:{port} ({error.strerror or error}): "
                              "choose another --port or --host") from None
    return listening


def url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
