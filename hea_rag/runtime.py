"""Keep library chatter off stderr: our own status lines are the only ones a user should read."""

from __future__ import annotations

import logging
import os
import warnings
from functools import lru_cache
from pathlib import Path

from hea_rag import config


@lru_cache(maxsize=1)
def quiet_libraries() -> None:
    """Silence load-time progress bars and advisory warnings, unless --debug/HEA_RAG_DEBUG."""
    if config.debug_enabled():
        return
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # deprecation notices inside transformers/peft/torch are for their authors, not our users
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # bitsandbytes warns on every import that an optional CPU kernel package is missing.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Native bf16 matmuls (AVX512-BF16 or AMX): there bf16 runs ~2x faster than fp32 here."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP check, so an offline machine fails at once instead of after the hub client's
    retries (about 25 s of backoff per file)."""
    import socket
    from urllib.parse import urlsplit

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}:
        return False
    host = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").hostname
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def looks_like_local_path(name: str) -> bool:
    """Whether a model name means a folder here rather than a hub id (`org/name`): absolute,
    ./ ../ or ~ paths, more than one slash, or a first part that is a folder here."""
    if name.startswith(("/", "./", "../", "~", ".\\")) or name in (".", "..") or "\\" in name:
        return True
    parts = name.split("/")
    return len(parts) > 2 or name.endswith("/") or (len(parts) == 2 and Path(parts[0]).is_dir())
