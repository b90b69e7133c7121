"""Which checkpoint a `finetune` run may continue from: only one written by the same run.

A run's fingerprint (base model, precision, context mode, the hyper-parameters that change the
trained weights, a hash of the training examples) is written beside its checkpoints. A later
run resumes only when its own fingerprint is the same; otherwise the checkpoints are stale (a
rerun with other data or settings would continue, or silently skip, someone else's training) and
are removed before it starts fresh.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import asdict
from pathlib import Path

from hea_rag.adapter import model_fingerprint
from hea_rag.output import status

RUN_FILE = "run.json"
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")
# settings that leave the trained weights unchanged: changing them keeps a checkpoint usable
_NOT_TRAINING = {"eval_examples", "save_steps", "logging_steps", "gradient_checkpointing"}


def run_fingerprint(base_model: str, model_config, quantization: str, context_mode: str,
                    settings, train_examples) -> dict:
    """What makes two runs the same run, as JSON values (so it compares equal once reloaded)."""
    hyper = {k: v for k, v in asdict(settings).items() if k not in _NOT_TRAINING}
    data = json.dumps([[e.prompt, e.answer] for e in train_examples], ensure_ascii=False)
    fingerprint = {"base_model": base_model, "quantization": quantization,
                   "context_mode": context_mode, **hyper,
                   "architecture": model_fingerprint(model_config),
                   "train_examples_sha256": hashlib.sha256(data.encode("utf-8")).hexdigest()}
    return json.loads(json.dumps(fingerprint))


def checkpoint_to_resume(folder: Path, fingerprint: dict, resume: bool = True) -> Path | None:
    """The newest complete checkpoint in `folder` when `resume` and it was written by a run
    with this fingerprint; else None, after removing the stale checkpoints (said on stderr).
    Either way `folder` then records this run's fingerprint."""
    checkpoints = sorted(_checkpoints(folder), key=_step)
    complete = [p for p in checkpoints if (p / "trainer_state.json").exists()]
    recorded = _recorded(folder)
    if resume and complete and recorded == fingerprint:
        status(f"finetune: resuming from {complete[-1]} (same data and settings)")
        return complete[-1]
    if checkpoints:
        status(f"finetune: starting fresh, removing {len(checkpoints)} checkpoint(s) in {folder}: "
               f"{_why_stale(recorded, fingerprint, resume)}")
        for path in checkpoints:
            shutil.rmtree(path)
    _record(folder, fingerprint)
    return None


def restored_progress(checkpoint: Path | None) -> tuple[int, int]:
    """(optimizer steps, input tokens) a resumed run starts with, so that throughput counts
    only what this run trains."""
    if checkpoint is None:
        return 0, 0
    state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    return int(state.get("global_step", 0)), int(state.get("num_input_tokens_seen", 0))


def _why_stale(recorded: dict | None, fingerprint: dict, resume: bool) -> str:
    if not resume:
        return "--no-resume"
    if recorded is None:
        return f"no readable {RUN_FILE} says which data and settings they were trained with"
    changed = [key for key in fingerprint if recorded.get(key) != fingerprint[key]]
    if changed:
        return f"they were trained with a different {', '.join(changed)}"
    return "none of them was completely written"


def _checkpoints(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.is_dir() and _CHECKPOINT.fullmatch(p.name)]


def _step(path: Path) -> int:
    return int(_CHECKPOINT.fullmatch(path.name).group(1))


def _recorded(folder: Path) -> dict | None:
    try:
        recorded = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return recorded if isinstance(recorded, dict) else None


def _record(folder: Path, fingerprint: dict) -> None:
    """Written atomically: a crash never leaves a half fingerprint that could match."""
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f"{RUN_FILE}.partial"
    partial.write_text(json.dumps(fingerprint, indent=2), encoding="utf-8")
    os.replace(partial, folder / RUN_FILE)
