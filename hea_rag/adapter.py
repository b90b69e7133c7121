"""Whether a LoRA adapter fits the base model asked for: the same base (by identity, not by
spelling), the prompt format `ask` sends, and target modules the base has.

Reads our metadata (`hea_rag_adapter.json`, written by `finetune`) first, else PEFT's own
`adapter_config.json`, so plain PEFT adapters trained elsewhere load too.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hea_rag.errors import HeaRagError
from hea_rag.prompt import PROMPT_TEMPLATE

ADAPTER_METADATA = "hea_rag_adapter.json"
PEFT_CONFIG = "adapter_config.json"
# the shape that decides whether LoRA weights fit a base; recorded at training time
FINGERPRINT_KEYS = ("model_type", "hidden_size", "num_hidden_layers", "vocab_size")


class AdapterMismatchError(HeaRagError):
    """An adapter trained on another base model, or for another prompt format."""


@dataclass(frozen=True)
class AdapterInfo:
    folder: Path
    base: str | None  # as recorded: hub id, local path or preset name
    fingerprint: dict[str, Any] | None  # None for adapters not trained by hea-rag
    prompt_format: str | None
    targets: list[str] | str | None  # PEFT's target_modules: names, or one regular expression


def model_fingerprint(config) -> dict[str, Any]:
    """model_type, hidden_size, num_hidden_layers and vocab_size of a model config."""
    return {key: getattr(config, key, None) for key in FINGERPRINT_KEYS}


def read_adapter(folder: Path) -> AdapterInfo:
    """What the adapter folder records: ours where present, else PEFT's config."""
    peft = _read_json(folder / PEFT_CONFIG)
    ours = _read_json(folder / ADAPTER_METADATA) if (folder / ADAPTER_METADATA).exists() else {}
    base = ours.get("base_model") or peft.get("base_model_name_or_path")
    return AdapterInfo(folder=folder, base=base, fingerprint=ours.get("base_fingerprint"),
                       prompt_format=ours.get("prompt_format"), targets=peft.get("target_modules"))


def check_adapter(info: AdapterInfo, model_name: str, model) -> None:
    """Refuse an adapter for another prompt format or another base; warn about targets that
    match no module of the base (PEFT skips them, so those weights do nothing)."""
    if info.prompt_format is not None and info.prompt_format != PROMPT_TEMPLATE:
        raise AdapterMismatchError(
            f"adapter {info.folder} was trained on the prompt {info.prompt_format!r}, but ask "
            f"sends {PROMPT_TEMPLATE!r}: retrain it with `hea-rag finetune`, or use --no-adapter")
    _check_base(info, model_name, model.config)
    missing = missing_modules(model, info.targets)
    if missing:
        print(f"hea-rag: warning: adapter {info.folder} targets {', '.join(missing)}, which "
              f"{model_name} does not have; those modules are left unadapted", file=sys.stderr)


def _check_base(info: AdapterInfo, model_name: str, config) -> None:
    """A recorded fingerprint decides; without one (third-party adapters) the names must
    designate the same model."""
    if info.fingerprint is not None:
        found = model_fingerprint(config)
        recorded = {key: info.fingerprint.get(key) for key in FINGERPRINT_KEYS}
        if found == recorded:
            return
        raise AdapterMismatchError(
            f"adapter {info.folder} was trained on {info.base!r} ({_shape(recorded)}), but "
            f"{model_name!r} is {_shape(found)}: use --model {info.base}, another --adapter, "
            "or --no-adapter")
    if info.base is None or same_model(info.base, model_name):
        return
    raise AdapterMismatchError(
        f"adapter {info.folder} was trained on {info.base!r}, not {model_name!r}: "
        f"use --model {info.base}, another --adapter, or --no-adapter")


def same_model(first: str, second: str) -> bool:
    """Whether two spellings designate one model: the same folder however written, the same
    hub id in any case, or a local folder holding that hub model."""
    first_dir, second_dir = _local_folder(first), _local_folder(second)
    if first_dir and second_dir:
        return first_dir == second_dir
    if not (first_dir or second_dir):
        return first.lower() == second.lower()
    folder, hub_id = (first_dir, second) if first_dir else (second_dir, first)
    return _holds_hub_model(folder, hub_id.lower())


def _local_folder(name: str) -> Path | None:
    path = Path(name).expanduser()
    return path.resolve() if path.is_dir() else None


def _holds_hub_model(folder: Path, hub_id: str) -> bool:
    """A folder named after the hub model (`hf download ORG/NAME --local-dir NAME`), a hub
    cache snapshot (models--ORG--NAME/snapshots/REV), or one whose config.json records it as
    `_name_or_path` (as hub downloads of older checkpoints do)."""
    if folder.name.lower() == hub_id.rsplit("/", 1)[-1]:
        return True
    if any(part.lower() == "models--" + hub_id.replace("/", "--") for part in folder.parts):
        return True
    config = folder / "config.json"
    return config.exists() and str(_read_json(config).get("_name_or_path", "")).lower() == hub_id


def missing_modules(model, targets: list[str] | str | None) -> list[str]:
    """Target names that match no module of `model`, matched as PEFT does (the whole name or
    its dotted end). A regular expression is left to PEFT."""
    if not isinstance(targets, list):
        return []
    names = [name for name, _ in model.named_modules()]
    return [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]


def _shape(fingerprint: dict[str, Any]) -> str:
    return ", ".join(f"{key} {fingerprint.get(key)}" for key in FINGERPRINT_KEYS)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AdapterMismatchError(
            f"{path}: cannot read it ({type(error).__name__}); restore the adapter folder or "
            "use --no-adapter") from None
    if not isinstance(data, dict):
        raise AdapterMismatchError(f"{path}: not a JSON object; restore it or use --no-adapter")
    return data
