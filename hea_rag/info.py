"""`hea-rag info`: what the index holds, whether it is sound, and what this machine can run."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

from hea_rag.errors import IndexDamagedError, IndexMissingError

PACKAGES = ("hea-rag", "torch", "transformers", "sentence-transformers", "faiss-cpu", "peft",
            "bitsandbytes")


def collect_info(folder: Path) -> dict[str, Any]:
    from hea_rag.runtime import quiet_libraries

    quiet_libraries()
    return {"index": _index_info(folder), "versions": _versions(), "device": _device_info()}


def _index_info(folder: Path) -> dict[str, Any]:
    """The manifest's fields plus `integrity` ("ok" or "failed") and its `problems`, each naming
    its file. A folder with no index has only `path` and `error`: that is no damage."""
    from hea_rag.store import Manifest

    report: dict[str, Any] = {"path": str(folder.resolve())}
    try:
        manifest = Manifest.load(folder, check_version=False)
    except IndexMissingError as error:
        return {**report, "error": str(error)}
    except IndexDamagedError as error:
        return {**report, "integrity": "failed", "problems": [error.what]}
    problems = _problems(folder, manifest)
    return {**report, **manifest.__dict__, "integrity": "failed" if problems else "ok",
            "problems": problems}


def _problems(folder: Path, manifest) -> list[str]:
    from hea_rag.store import MANIFEST, READABLE_FORMATS, IndexReader

    if manifest.format_version not in READABLE_FORMATS:  # sound, but this version cannot read it
        return [f"{folder / MANIFEST}: index format {manifest.format_version}, "
                f"this version reads {', '.join(map(str, READABLE_FORMATS))}"]
    try:
        with IndexReader(folder) as reader:
            return reader.problems()
    except IndexDamagedError as error:
        return [error.what]


def integrity_error(info: dict[str, Any]) -> str | None:
    """The one line `info` ends with when the index is damaged, naming what failed and the fix."""
    from hea_rag.store import rebuild_hint

    problems = info["index"].get("problems")
    if not problems:
        return None
    more = f" (and {len(problems) - 1} more problem(s), above)" if len(problems) > 1 else ""
    return f"index check failed: {problems[0]}{more}; {rebuild_hint(Path(info['index']['path']))}"


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
    """One JSON object, or readable lines: a heading per section, aligned labels and values."""
    if as_json:
        print(json.dumps(info, indent=2))
        return
    sections = {"index": _index_lines(info["index"]), "versions": _version_lines(info["versions"]),
                "device": _device_lines(info["device"])}
    width = max(len(label) for lines in sections.values() for label, _ in lines)
    for section, lines in sections.items():
        print(section)
        for label, value in lines:
            print(f"  {label:<{width}}  {value}")


def _index_lines(index: dict[str, Any]) -> list[tuple[str, str]]:
    lines = [("path", index["path"])]
    if "error" in index:
        return lines + [("status", index["error"])]
    if "counts" in index:
        chunking = index["chunking"]
        lines += [
            ("papers", str(index["counts"]["papers"])),
            ("passages", str(index["counts"]["passages"])),
            ("embedder", f"{index['embedder']} ({index['dimension']} dimensions)"),
            ("chunking", f"at most {chunking['max_tokens']} tokens per passage, "
                         f"{chunking['overlap_sentences']} sentence(s) of overlap"),
            ("generation", f"{index['generation']} (format {index['format_version']})"),
            ("segments", f"{len(index['segments'])} (vectors: flat below "
                         f"{index['ann']['min_passages']} passages, {index['ann']['kind'].upper()} above)"),
        ]
    lines.append(("integrity", "OK" if index["integrity"] == "ok" else "FAILED"))
    return lines + [("problem", problem) for problem in index["problems"]]


def _version_lines(versions: dict[str, str | None]) -> list[tuple[str, str]]:
    return [(name, version or "not installed") for name, version in versions.items()]


def _device_lines(device: dict[str, Any]) -> list[tuple[str, str]]:
    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    return [
        ("CUDA", yes(device["cuda"])),
        ("GPU", device["gpu"] or "none"),
        ("bf16 on the GPU", yes(device["bf16"])),
        ("4-bit (bitsandbytes)", yes(device["bitsandbytes_4bit"])),
        ("torch threads", str(device["torch_threads"])),
    ]
