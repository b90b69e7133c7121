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
