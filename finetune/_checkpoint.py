"""Resumable checkpoints of a fine-tuning run: safetensors + torch state + JSON.

A checkpoint is three files written atomically (`jaxscm.atomic_write`), named by
step, and committed by writing `state.json` last; older step files are removed only
after that. A run cut off at any moment therefore leaves the previous complete
checkpoint. Nothing is pickled: weights are safetensors, the optimiser state is
read back with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from jaxscm import atomic_write

FORMAT = "causalmixft-finetune-checkpoint"
VERSION = 1


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
    write_json(
        folder / "state.json",
        {
            "format": FORMAT,
            "version": VERSION,
            "step": step,
            "weights": wname,
            "optimizer": oname,
            **state,
        },
    )
    for old in list(folder.glob("weights-*.safetensors")) + list(
        folder.glob("optimizer-*.pt")
    ):
        if old.name not in (wname, oname):
            old.unlink(missing_ok=True)


def load(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Reads the checkpoint in `folder`, or None when there is none.

    Returns:
      The JSON state plus "weights", "best" (or None) and "optimizer" objects.

    Raises:
      ValueError: naming the file, when the checkpoint is unreadable or foreign.
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    path = folder / "state.json"
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
        if state.get("format") != FORMAT or state.get("version") != VERSION:
            raise ValueError("not a fine-tuning checkpoint of this version")
        tensors = load_file(str(folder / state["weights"]))
        optimizer = torch.load(folder / state["optimizer"], weights_only=True)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise ValueError(
            f"cannot resume from {path}: {err}; delete {folder} to start afresh"
        ) from err
    weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} or None
    return {**state, "weights": weights, "best": best, "optimizer": optimizer}
