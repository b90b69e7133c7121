"""`hea-rag info`: what the index holds and what this machine can run."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

from hea_rag.errors import HeaRagError

PACKAGES = ("hea-rag", "torch", "transformers", "sentence-transformers", "faiss-cpu", "peft",
            "bitsandbytes")


def collect_info(folder: Path) -> dict[str, Any]:
    from hea_rag.runtime import quiet_libraries

    quiet_libraries()
    return {"index": _index_info(folder), "versions": _versions(), "device": _device_info()}


def _index_info(folder: Path) -> dict[str, Any]:
    from hea_rag.store import Manifest

    try:
        manifest = Manifest.load(folder)
    except HeaRagError as error:
        return {"path": str(folder.resolve()), "error": str(error)}
    return {"path": str(folder.resolve()), **manifest.__dict__}


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _device_info() -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    return {
        "cuda": cuda,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "bf16": bool(cuda and torch.cuda.is_bf16_supported()),
        "bitsandbytes_4bit": _bitsandbytes_usable(),
        "torch_threads": torch.get_num_threads(),
    }


def _bitsandbytes_usable() -> bool:
    """True when bitsandbytes imports and can quantize a tensor to NF4 on this machine."""
    try:
        import torch
        import bitsandbytes.functional as F

        device = "cuda" if torch.cuda.is_available() else "cpu"
        F.quantize_4bit(torch.ones(64, dtype=torch.float32, device=device), quant_type="nf4")
        return True
    except Exception:  # noqa: BLE001 - any failure means "not usable here"
        return False


def print_info(info: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(info, indent=2))
        return
    for section, values in info.items():
        print(f"{section}:")
        for key, value in values.items():
            print(f"  {key}: {value}")
