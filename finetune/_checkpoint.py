"""Resumable checkpoints of a fine-tuning run: safetensors + torch state + JSON.

A checkpoint is three files written atomically (`jaxscm.atomic_write`), named by
step, and committed by writing `state.json` last; older step files are removed only
after that. A run cut off at any moment therefore leaves the previous complete
checkpoint. Nothing is pickled: weights are safetensors, the optimiser state is
read back with `torch.load(weights_only=True)`. `state.json` holds the sha256 of the
two step files and of its own content; `verify` checks them (cheaply, nothing is
deserialised) before a run spends minutes fitting an SCM, and `load` again before
resuming, so a corrupted or edited checkpoint is one clear error, never a traceback
or a silently different run.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from jaxscm import atomic_write

FORMAT = "causalmixft-finetune-checkpoint"
VERSION = 2  # 2: checksums


def write_json(path: Path, obj: Any) -> None:
    """Atomic JSON write."""
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=1)


def save(
    folder: str | os.PathLike[str],
    *,
    step: int,
    weights: dict[str, torch.Tensor],
    best: dict[str, torch.Tensor] | None,
    optimizer: dict[str, Any],
    state: dict[str, Any],
) -> None:
    """Writes the checkpoint of `step`: weights, best weights, optimiser, state."""
    from safetensors.torch import save_file

    folder = Path(folder)
    tensors = {f"model.{k}": v.contiguous() for k, v in weights.items()}
    if best is not None:
        tensors.update({f"best.{k}": v.contiguous() for k, v in best.items()})
    wname, oname = f"weights-{step}.safetensors", f"optimizer-{step}.pt"
    with atomic_write(folder / wname) as f:
        save_file(tensors, f.name)  # by name; atomic_write syncs what is there
    with atomic_write(folder / oname) as f:
        torch.save(optimizer, f)
    record = {
        "format": FORMAT,
        "version": VERSION,
        "step": step,
        "weights": wname,
        "optimizer": oname,
        **state,
    }
    record["sha256"] = {
        wname: _file_sha(folder / wname),
        oname: _file_sha(folder / oname),
    }
    # Hashed as it will be read back (JSON turns tuples into lists, ...).
    record["sha256"]["state.json"] = _state_sha(json.loads(json.dumps(record)))
    write_json(folder / "state.json", record)
    for old in list(folder.glob("weights-*.safetensors")) + list(
        folder.glob("optimizer-*.pt")
    ):
        if old.name not in (wname, oname):
            old.unlink(missing_ok=True)


_REQUIRED = {
    "format": str, "version": int, "step": int, "weights": str, "optimizer": str,
    "sha256": dict, "fingerprint": str, "history": list, "steps": list, "bad": int,
}  # fmt: skip


def verify(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Checks the checkpoint in `folder` without deserialising anything.

    Returns:
      Its JSON state, or None when `folder` holds no checkpoint.

    Raises:
      ValueError: naming the file and the fix, when the checkpoint is unreadable,
        foreign, of another version, or fails a checksum.
    """
    folder = Path(folder)
    path = folder / "state.json"
    if not path.exists():
        return None

    def fail(why: str) -> ValueError:
        return ValueError(
            f"cannot resume from {path}: {why}; delete {folder} to start afresh"
        )

    try:
        state = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError, RecursionError) as err:
        raise fail(f"unreadable ({err})") from err
    if not isinstance(state, dict):
        raise fail("not a JSON object")
    if state.get("format") != FORMAT or state.get("version") != VERSION:
        raise fail(
            f"not a fine-tuning checkpoint of this version (format "
            f"{state.get('format')!r}, version {state.get('version')!r}, expected "
            f"{FORMAT!r} v{VERSION})"
        )
    for key, kind in _REQUIRED.items():
        value = state.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise fail(f"entry {key!r} is missing or not a {kind.__name__}")
    sums = state["sha256"]
    if sums.get("state.json") != _state_sha(state):
        raise fail("state.json fails its checksum (edited or corrupted)")
    for key in ("weights", "optimizer"):
        name = state[key]
        file = folder / name
        if Path(name).name != name or not file.is_file():
            raise fail(f"its {key} file {name!r} is missing")
        if _file_sha(file) != sums.get(name):
            raise fail(f"{file.name} fails its checksum (corrupted)")
    return state


def load(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Reads the checkpoint in `folder` (checked by `verify` first), or None.

    Returns:
      The JSON state plus "weights", "best" (or None) and "optimizer" objects.

    Raises:
      ValueError: naming the file, when the checkpoint is unreadable or foreign.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    state = verify(folder)
    if state is None:
        return None
    try:
        tensors = load_file(str(folder / state["weights"]))
        optimizer = torch.load(folder / state["optimizer"], weights_only=True)
    except (
        OSError,
        ValueError,
        KeyError,
        RuntimeError,
        EOFError,
        SafetensorError,
        pickle.UnpicklingError,
    ) as err:
        raise ValueError(
            f"cannot resume from {folder / 'state.json'}: {err}; delete {folder} to "
            f"start afresh"
        ) from err
    weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} or None
    return {**state, "weights": weights, "best": best, "optimizer": optimizer}


def _file_sha(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _record_sha(record: dict[str, Any], own: str) -> str:
    """sha256 of a JSON record and the digests it lists, less its own (`own`)."""
    body = {k: v for k, v in record.items() if k != "sha256"}
    files = {k: v for k, v in record.get("sha256", {}).items() if k != own}
    text = json.dumps([body, files], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _state_sha(state: dict[str, Any]) -> str:
    return _record_sha(state, "state.json")
