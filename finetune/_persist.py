"""Saving and loading `CausalMixFTClassifier`: safetensors + JSON, no pickle."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from finetune._config import FinetuneConfig
from finetune._encode import TableEncoder

SAVE_FORMAT = "causalmixft-classifier"
SAVE_VERSION = 1
# Constructor arguments that `save` cannot write as JSON (they are not restored).
_NOT_SAVED = ("tfm", "scm", "callback", "checkpoint_dir")


def save(est: Any, path: str | os.PathLike[str]) -> Path:
    """`CausalMixFTClassifier.save` (its docstring lists the files and errors)."""
    from safetensors.numpy import save_file
    from tabpfn.checkpoint import save_as_safetensors

    import jaxscm

    check_is_fitted(est, "network_")
    path = Path(path)
    if path.exists() and any(path.iterdir()):
        raise FileExistsError(f"{path} exists and is not empty; choose a new folder")
    with jaxscm.atomic_directory(path) as tmp:
        save_as_safetensors(est.network_.checkpoint(), tmp / "model.safetensors")
        save_file(
            {
                "X": np.ascontiguousarray(est.context_X_),
                "y": np.ascontiguousarray(est.context_y_),
            },
            str(tmp / "context.safetensors"),
        )
        if est.scm_ is not None:
            jaxscm.save(tmp / "scm.npz", est.scm_)
        params = {k: v for k, v in est.get_params().items() if k not in _NOT_SAVED}
        meta = {
            "format": SAVE_FORMAT,
            "version": SAVE_VERSION,
            "params": params,
            "tfm": est.tfm if isinstance(est.tfm, (str, type(None))) else "object",
            "encoder": est.encoder_.to_json(),
            "config": est.config_.to_json(),
            "history": est.history_,
            "steps": est.steps_,
            "best_step": est.best_step_,
            "stop_reason": est.stop_reason_,
            "seed": est.seed_,
            "fit_seconds": est.fit_seconds_,
            "scm_seconds": est.scm_seconds_,
        }
        (tmp / "estimator.json").write_text(json.dumps(meta, indent=1))
    return path


def load(cls: Any, path: str | os.PathLike[str]) -> Any:
    """Reads a model written by `save`.

    Raises:
      FileNotFoundError: no such directory or a file is missing.
      ValueError: not a saved CausalMixFTClassifier of this version.
    """
    from safetensors.numpy import load_file
    from tabpfn import TabPFNClassifier

    from finetune._tabpfn import network_of

    path = Path(path)
    meta_path = path / "estimator.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} not found; is {path} a saved model?")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != SAVE_FORMAT or meta.get("version") != SAVE_VERSION:
        raise ValueError(
            f"{path} is not a {SAVE_FORMAT} v{SAVE_VERSION} model "
            f"(format {meta.get('format')!r}, version {meta.get('version')!r})"
        )
    params = dict(meta["params"])
    tfm = meta["tfm"] if meta["tfm"] != "object" else None
    est = cls(tfm=tfm, **{k: v for k, v in params.items() if k != "tfm"})
    config = FinetuneConfig(**meta["config"])
    model = TabPFNClassifier(
        model_path=str(path / "model.safetensors"),
        device=config.device,
        ignore_pretraining_limits=True,
    )
    est.network_ = network_of(model)
    ctx = load_file(str(path / "context.safetensors"))
    est.context_X_, est.context_y_ = ctx["X"], ctx["y"]
    est.encoder_ = TableEncoder.from_json(meta["encoder"])
    est.classes_ = est.encoder_.classes
    est.n_features_in_ = len(est.encoder_.features)
    if est.encoder_.from_frame:
        est.feature_names_in_ = np.asarray(est.encoder_.features, dtype=object)
    est.history_, est.steps_ = meta["history"], meta["steps"]
    est.best_step_, est.stop_reason_ = meta["best_step"], meta["stop_reason"]
    est.seed_, est.config_ = meta["seed"], config
    est.fit_seconds_, est.scm_seconds_ = meta["fit_seconds"], meta["scm_seconds"]
    est.scm_ = None
    if (path / "scm.npz").is_file():
        import jaxscm

        est.scm_ = jaxscm.load(path / "scm.npz")
    est._predictor = est._build_predictor()
    return est
