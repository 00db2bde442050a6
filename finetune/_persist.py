"""Saving and loading `CausalMixFTClassifier`: safetensors + JSON, no pickle.

A saved model is a folder: ``model.safetensors`` (the network), ``context.safetensors``
(the inference context), ``scm.npz`` (the SCM ensemble, if any) and
``estimator.json``. The JSON lists the sha256 of every other file and of its own
content, so a flipped bit in the weights, an edited class list or a swapped file is
refused on load instead of predicting something else. Everything is validated before
anything is built: no download is attempted, no lock file is written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from finetune._checkpoint import _file_sha, _record_sha
from finetune._config import FinetuneConfig
from finetune._encode import TableEncoder

SAVE_FORMAT = "causalmixft-classifier"
SAVE_VERSION = 2  # 2: checksums
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
            "augment_info": est.augment_info_,
        }
        files = [f for f in _FILES if (tmp / f).is_file()]
        meta["sha256"] = {f: _file_sha(tmp / f) for f in files}
        # Hashed as it will be read back (JSON turns tuples into lists, ...).
        meta["sha256"]["estimator.json"] = _meta_sha(json.loads(json.dumps(meta)))
        (tmp / "estimator.json").write_text(json.dumps(meta, indent=1))
    return path


_FILES = ("model.safetensors", "context.safetensors", "scm.npz")
_KEYS = {
    "format", "version", "params", "tfm", "encoder", "config", "history", "steps",
    "best_step", "stop_reason", "seed", "fit_seconds", "scm_seconds", "sha256",
    "augment_info",
}  # fmt: skip
_OPTIONAL = {"augment_info"}  # absent in models saved before generators were wired
# Architecture sizes above this are refused before tabpfn builds the network (an
# edited "embed_dim" would otherwise allocate terabytes). Real TabPFN models stay
# far below it; the checksum catches edits first, this guards any file.
_MAX_ARCH_SIZE = 1 << 16
_SIZE_WORDS = ("dim", "size", "num_", "heads", "layers", "emsize", "nhid", "blocks")
_DEVICES = ("cpu", "cuda", "mps", "auto")


def load(cls: Any, path: str | os.PathLike[str]) -> Any:
    """Reads a model written by `save`, after checking every file.

    Raises:
      FileNotFoundError: no such directory or a file is missing.
      jaxscm.FormatError: (a ValueError) not a saved CausalMixFTClassifier of this
        version, a file that fails its checksum, or malformed metadata; the message
        names the file and the fix.
    """
    from safetensors import SafetensorError

    from jaxscm import FormatError

    path = Path(path)
    meta = _read_meta(path)
    try:
        return _build(cls, path, meta)
    except FormatError:
        raise
    except (
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        IndexError,
        SafetensorError,
    ) as err:
        raise FormatError(
            f"{path / 'estimator.json'} describes an invalid model ({err}); "
            f"re-save it with CausalMixFTClassifier.save"
        ) from err


def _read_meta(path: Path) -> dict[str, Any]:
    """estimator.json, validated, with every file's checksum verified."""
    from jaxscm import FormatError

    meta_path = path / "estimator.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} not found; is {path} a saved model?")
    bad = f"{meta_path} is corrupted or was edited"
    try:
        meta = json.loads(meta_path.read_text("utf-8"))
    except (ValueError, RecursionError) as err:  # JSON and UTF-8 errors
        raise FormatError(f"{bad}: not valid JSON ({err})") from err
    if not isinstance(meta, dict):
        raise FormatError(f"{bad}: a saved model's metadata is a JSON object")
    if meta.get("format") != SAVE_FORMAT or meta.get("version") != SAVE_VERSION:
        raise FormatError(
            f"{path} is not a {SAVE_FORMAT} v{SAVE_VERSION} model "
            f"(format {meta.get('format')!r}, version {meta.get('version')!r}); "
            f"re-save it with this version's CausalMixFTClassifier.save"
        )
    odd = (set(meta) - _KEYS) | (_KEYS - _OPTIONAL - set(meta))
    if odd:
        raise FormatError(f"{bad}: unexpected or missing entries {sorted(odd)}")
    sums = meta["sha256"]
    if not isinstance(sums, dict) or not all(isinstance(v, str) for v in sums.values()):
        raise FormatError(f"{bad}: its checksum table is malformed")
    if sums.get("estimator.json") != _meta_sha(meta):
        raise FormatError(f"{bad}: its content fails its checksum")
    listed = set(sums) - {"estimator.json"}
    if not {"model.safetensors", "context.safetensors"} <= listed or not listed <= set(
        _FILES
    ):
        raise FormatError(f"{bad}: its checksum table lists {sorted(listed)}")
    for name in _FILES:
        file = path / name
        if name not in listed:
            if file.exists():
                raise FormatError(f"{file} was not part of the saved model; remove it")
            continue
        if not file.is_file():
            raise FileNotFoundError(
                f"{file} is missing; the saved model at {path} is incomplete - "
                f"re-save it"
            )
        if _file_sha(file) != sums[name]:
            raise FormatError(
                f"{file} fails its checksum: the file is corrupted or was replaced; "
                f"re-save the model"
            )
    return meta


def _build(cls: Any, path: Path, meta: dict[str, Any]) -> Any:
    from safetensors.numpy import load_file

    from finetune._tabpfn import network_of
    from finetune._tfm import load_tfm

    params = meta["params"]
    if not isinstance(params, dict):
        raise TypeError("params must be a JSON object")
    known = set(cls().get_params())
    if set(params) - known:
        raise ValueError(f"unknown parameters {sorted(set(params) - known)}")
    tfm = meta["tfm"] if meta["tfm"] != "object" else None
    if not isinstance(tfm, (str, type(None))):
        raise TypeError(f"tfm must be a name, a path or null, got {tfm!r}")
    est = cls(tfm=tfm, **{k: v for k, v in params.items() if k != "tfm"})
    if not isinstance(meta["config"], dict):
        raise TypeError("config must be a JSON object")
    config = FinetuneConfig(**meta["config"])
    _check_device(config.device)
    weights = path / "model.safetensors"
    _check_architecture(weights)
    # load_tfm's guard: an existing local file, never a download or a lock file.
    model = load_tfm(weights, device=config.device, ignore_pretraining_limits=True)
    est.encoder_ = TableEncoder.from_json(meta["encoder"])
    ctx = load_file(str(path / "context.safetensors"))
    n_features = len(est.encoder_.features)
    X, y = ctx.get("X"), ctx.get("y")
    if (
        set(ctx) != {"X", "y"}
        or X.ndim != 2
        or X.shape[1:] != (n_features,)
        or y.shape != (X.shape[0],)
    ):
        raise ValueError("context.safetensors does not match the encoder's features")
    est.context_X_, est.context_y_ = X, y
    est.classes_ = est.encoder_.classes
    # `fit` keeps at least one row of every class in the context (the validation
    # split is stratified and refuses classes with too few rows).
    if not np.array_equal(np.unique(y), np.arange(len(est.classes_))):
        raise ValueError(
            f"the context's labels {np.unique(y).tolist()} are not exactly the codes "
            f"of the {len(est.classes_)} saved classes"
        )
    est.network_ = network_of(model)
    est.n_features_in_ = n_features
    if est.encoder_.from_frame:
        est.feature_names_in_ = np.asarray(est.encoder_.features, dtype=object)
    est.history_, est.steps_ = meta["history"], meta["steps"]
    est.best_step_, est.stop_reason_ = meta["best_step"], meta["stop_reason"]
    est.seed_, est.config_ = meta["seed"], config
    est.fit_seconds_, est.scm_seconds_ = meta["fit_seconds"], meta["scm_seconds"]
    est.scm_, est.generator_ = None, None  # a generator is not saved: not needed
    est.augment_info_ = meta.get("augment_info") or _old_info(est, meta)
    if not isinstance(est.augment_info_, dict):
        raise TypeError("augment_info must be a JSON object")
    if (path / "scm.npz").is_file():
        import jaxscm

        est.scm_ = jaxscm.load(path / "scm.npz")
    est._predictor = est._build_predictor()
    return est


def _old_info(est: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """`augment_info_` of a model saved before it existed (SCM or plain only)."""
    plain = est.augment == "none"
    return {
        "generator": None if plain else est.augment,
        "mode": None if plain else "stream",
        "pool_rows": None,
        "options": {},
        "fit_seconds": meta["scm_seconds"],
    }


def _check_device(device: Any) -> None:
    import torch

    if device == "auto":
        return
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as err:
        raise ValueError(
            f"device {device!r} is not a torch device ({', '.join(_DEVICES)})"
        ) from err
    if parsed.type not in _DEVICES:
        raise ValueError(f"device {device!r} is not one of {', '.join(_DEVICES)}")
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"the model was saved for device {device!r}, which this machine lacks; "
            f"load it where CUDA is available, or re-fit with device='cpu'"
        )


def _check_architecture(weights: Path) -> None:
    """Refuses absurd architecture sizes in the weights' header before building."""
    from safetensors import safe_open

    with safe_open(str(weights), "np") as f:
        header = f.metadata() or {}
    config = json.loads(header.get("config", "{}"))
    if not isinstance(config, dict):
        raise ValueError(f"{weights}: its architecture config is not a JSON object")
    for key, value in config.items():
        size_like = any(w in key for w in _SIZE_WORDS)
        if size_like and isinstance(value, int) and not 0 <= value <= _MAX_ARCH_SIZE:
            raise ValueError(
                f"{weights}: architecture size {key}={value} is outside [0, "
                f"{_MAX_ARCH_SIZE}]; the file is corrupted or was edited"
            )


def _meta_sha(meta: dict[str, Any]) -> str:
    return _record_sha(meta, "estimator.json")
