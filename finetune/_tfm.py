"""Loading the tabular foundation model: offline default, local file, or published name.

`load_tfm` always returns a plain `tabpfn.TabPFNClassifier` (scikit-learn style; it
takes DataFrames with string categorical columns), so fine-tuning code never cares
where the weights came from:

* nothing named: the project's own checkpoint shipped in `finetune/checkpoints/`,
  pre-trained on jaxscm's random-SCM prior (`causalmixft pretrain`, see its
  MODEL_CARD.md); works offline out of the box;
* a shipped checkpoint's name (`SHIPPED_CHECKPOINTS`, e.g.
  `"causalmixft-prior-v3.5-tiny"`, the earlier default): that file, offline;
* a path to a local TabPFN checkpoint (`.safetensors`, `.ckpt`, `.pth`; any
  architecture the installed tabpfn builds), e.g. real TabPFN weights downloaded by
  hand;
* a published model name (`"v2"`, `"v2.5"`, ..., or a file name such as
  `"tabpfn-v2-classifier-finetuned-zk73skhh.ckpt"`): taken from tabpfn's cache when
  there, otherwise downloaded by tabpfn itself - only if the network is reachable.
  Offline it fails in well under a second, before tabpfn is asked (tabpfn's licence
  check ignores HF_HUB_OFFLINE and leaves empty lock files behind).
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from pathlib import Path
from typing import Any

CHECKPOINT_DIR = Path(__file__).parent / "checkpoints"
# Checkpoints shipped in CHECKPOINT_DIR, by name; each has a section in MODEL_CARD.md.
SHIPPED_CHECKPOINTS: dict[str, Path] = {
    name: CHECKPOINT_DIR / f"{name}.safetensors"
    for name in ("causalmixft-prior2-v3.5-4l", "causalmixft-prior-v3.5-tiny")
}
DEFAULT_NAME = "causalmixft-prior2-v3.5-4l"
DEFAULT_CHECKPOINT = SHIPPED_CHECKPOINTS[DEFAULT_NAME]
_CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt", ".pth", ".pt")
_HUB_HOST = "huggingface.co"
# tabpfn version -> its default classifier file (tabpfn.model_loading.ModelSource);
# kept here so that resolving a name never imports tabpfn. A test checks it.
DEFAULT_FILES: dict[str, str] = {
    "v2": "tabpfn-v2-classifier-finetuned-zk73skhh.ckpt",
    "v2.5": "tabpfn-v2.5-classifier-v2.5_default.ckpt",
    "v2.6": "tabpfn-v2.6-classifier-v2.6_default.ckpt",
    "v3": "tabpfn-v3-classifier-v3_default.ckpt",
    "v3.5": "tabpfn-v3.5-20260909.safetensors",
    "v3.5-fast": "tabpfn-v3.5-fast-20260909.safetensors",
}


class WeightsUnavailableError(RuntimeError):
    """Named TabPFN weights are neither local nor downloadable (e.g. offline)."""


def load_tfm(
    name_or_path: str | os.PathLike[str] | None = None, **classifier_kwargs: Any
):
    """Returns a `TabPFNClassifier` on the chosen weights, ready to `fit`.

    Args:
      name_or_path: None for the shipped default checkpoint; the name of a shipped
        checkpoint (a key of `SHIPPED_CHECKPOINTS`); a path to a TabPFN checkpoint
        file; or a published model name (a tabpfn version such as "v2", "v2.5",
        "v3.5", or one of its classifier file names).
      **classifier_kwargs: passed to `TabPFNClassifier` (e.g. `n_estimators`,
        `random_state`). `device` defaults to "cpu"; for shipped checkpoints
        `ignore_pretraining_limits` defaults to True (the small models have no use
        for tabpfn's CPU row cap).

    Returns:
      An unfitted `tabpfn.TabPFNClassifier`.

    Raises:
      FileNotFoundError: a path (or the default checkpoint) that does not exist.
      WeightsUnavailableError: a published name that is not cached while offline,
        or whose download failed; the message says how to supply the weights.
      ValueError: a name that is neither a file nor a published model.

    Examples:
      >>> clf = load_tfm(n_estimators=2)  # doctest: +SKIP
      >>> clf.fit(X_train, y_train).predict_proba(X_test)  # doctest: +SKIP
    """
    classifier_kwargs.setdefault("device", "cpu")
    if name_or_path is None or str(name_or_path) in SHIPPED_CHECKPOINTS:
        name = DEFAULT_NAME if name_or_path is None else str(name_or_path)
        shipped = SHIPPED_CHECKPOINTS[name]
        if not shipped.is_file():
            raise FileNotFoundError(
                f"the shipped checkpoint {shipped} is missing from this "
                "installation; reinstall causalmixft, rebuild it with `causalmixft "
                f"pretrain ... --export {shipped}` (the command is in "
                f"{CHECKPOINT_DIR / 'MODEL_CARD.md'}), or pass a checkpoint path to "
                "load_tfm"
            )
        classifier_kwargs.setdefault("ignore_pretraining_limits", True)
        return _classifier(shipped, classifier_kwargs)

    path = Path(name_or_path).expanduser()
    if path.is_file():
        _check_loadable(path)
        return _classifier(path, classifier_kwargs)
    text = str(name_or_path)
    published = _published(text)
    if published is None:
        if path.suffix in _CHECKPOINT_SUFFIXES or os.sep in text or path.exists():
            # Not handed to tabpfn: it would try to download a mistyped path and
            # leave a lock file next to it.
            raise FileNotFoundError(
                f"no TabPFN checkpoint file at {path}; check the path, or pass None "
                "for the default offline checkpoint"
            )
        raise ValueError(
            f"{text!r} is neither a checkpoint file nor a published TabPFN model; "
            f"shipped checkpoints: {', '.join(SHIPPED_CHECKPOINTS)}; "
            f"published names: {', '.join(DEFAULT_FILES)} or a tabpfn classifier file "
            "name such as 'tabpfn-v2-classifier-finetuned-zk73skhh.ckpt'"
        )
    version, filename = published
    # Decided before importing tabpfn (~5 s) so that the offline error is immediate.
    cached = tabpfn_cache_dir() / filename
    if not cached.is_file():
        reason = _offline_reason()
        if reason is not None:
            raise WeightsUnavailableError(_how_to_supply(text, cached, reason))
        from tabpfn.constants import ModelVersion
        from tabpfn.model_loading import download_model

        result = download_model(
            cached,
            version=ModelVersion(version),
            which="classifier",
            model_name=filename,
        )
        if result != "ok":
            detail = "; ".join(f"{type(e).__name__}: {e}" for e in result)
            raise WeightsUnavailableError(_how_to_supply(text, cached, detail))
    from tabpfn import TabPFNClassifier
    from tabpfn.constants import ModelVersion

    return TabPFNClassifier.create_default_for_version(
        ModelVersion(version), **dict(classifier_kwargs, model_path=str(cached))
    )


def _classifier(path: Path, kwargs: dict[str, Any]):
    from tabpfn import TabPFNClassifier

    return TabPFNClassifier(model_path=str(path), **kwargs)


def _check_loadable(path: Path) -> None:
    """Refuses pickled checkpoints that hold anything but plain data."""
    if path.suffix == ".safetensors":
        return  # safetensors cannot hold code
    import torch

    try:  # mmap: validates the whole structure without reading the tensors
        torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:
        raise ValueError(
            f"{path} is not a plain-data TabPFN checkpoint (torch.load with "
            f"weights_only=True refused it: {e}); convert it to .safetensors with "
            "tabpfn.checkpoint.save_as_safetensors"
        ) from e


def _published(name: str) -> tuple[str, str] | None:
    """(tabpfn version, classifier file name) for a published name, else None."""
    if name in DEFAULT_FILES:
        return name, DEFAULT_FILES[name]
    if os.sep in name or not name.startswith("tabpfn-v"):
        return None
    if not name.endswith((".ckpt", ".safetensors")):
        return None
    # "tabpfn-v3.5-fast-..." must win over "tabpfn-v3.5-...": longest prefix first
    for version in sorted(DEFAULT_FILES, key=len, reverse=True):
        if name.startswith(f"tabpfn-{version}-"):
            return version, name
    return None


def tabpfn_cache_dir() -> Path:
    """tabpfn's model cache folder, found without importing tabpfn.

    Mirrors `tabpfn.model_loading.get_cache_dir` (a test checks they agree):
    TABPFN_MODEL_CACHE_DIR, else the platform's user cache folder + "tabpfn".
    """
    explicit = os.environ.get("TABPFN_MODEL_CACHE_DIR", "").strip()
    if explicit:
        return Path(explicit)
    if sys.platform == "win32" and os.environ.get("APPDATA", "").strip():
        return Path(os.environ["APPDATA"]) / "tabpfn"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "tabpfn"
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if xdg:
        return Path(xdg) / "tabpfn"
    return Path.home() / ".cache" / "tabpfn"


def _offline_reason(timeout: float = 0.5) -> str | None:
    """Why the model hub is unreachable (None if reachable), within ~`timeout` s."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in (
        "1",
        "true",
        "yes",
        "on",
    ):
        return "HF_HUB_OFFLINE is set"
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            with socket.create_connection((_HUB_HOST, 443), timeout=timeout):
                outcome.append(None)
        except OSError as e:
            outcome.append(f"{_HUB_HOST} is unreachable ({e})")

    # getaddrinfo has no timeout of its own, so the probe runs in a daemon thread.
    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 0.2)
    return outcome[0] if outcome else f"{_HUB_HOST} did not answer within {timeout} s"


def _how_to_supply(name: str, cached: Path, reason: str) -> str:
    return (
        f"cannot get the TabPFN weights {name!r}: {reason}. Either (1) download the "
        f"file on a machine with internet (accepting its licence at "
        f"https://huggingface.co/Prior-Labs) and place it at {cached} (or set "
        "TABPFN_MODEL_CACHE_DIR to its folder), (2) pass the local file's path to "
        "load_tfm(path), or (3) call load_tfm() with no name for the offline default "
        "checkpoint shipped with causalmixft."
    )
