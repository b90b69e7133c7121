"""Defaults and the environment variables that override them: one place for both."""

from __future__ import annotations

import os
from pathlib import Path

ENV_INDEX = "HEA_RAG_INDEX"
ENV_EMBEDDER = "HEA_RAG_EMBEDDER"
ENV_MODEL = "HEA_RAG_MODEL"
ENV_DEBUG = "HEA_RAG_DEBUG"
ENV_SHARED = "HEA_RAG_SHARED"  # where tests and benchmarks find ../shared

DEFAULT_INDEX = Path("index")
DEFAULT_K = 5
DEFAULT_MODEL = "microsoft/phi-2"
DEFAULT_LOCK_TIMEOUT = 600.0


def debug_enabled() -> bool:
    return os.environ.get(ENV_DEBUG, "").lower() in {"1", "true", "yes"}


def shared_dir(project_root: Path) -> Path:
    """The read-only shared data folder: $HEA_RAG_SHARED, else `../shared` beside the project."""
    return Path(os.environ.get(ENV_SHARED) or project_root.parent / "shared")
