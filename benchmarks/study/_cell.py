"""One cell of the grid: split, fit, score, and the record (without its seal).

`run_cell` is what a Ray task runs and what the serial loop calls: a pure function of
the cell, its method and the settings (plus the machine), so Ray and serial runs give
the same record but for its ``timing`` and ``machine`` fields. A cell whose fit fails
(e.g. a generator the estimator does not take yet) gives a record with
``status="error"`` and the message, so a resumed grid does not retry it forever
(``--retry-errors`` does).
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import platform
import socket
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from benchmarks.study import metrics
from benchmarks.study._profiles import Cell, Method

_VERSIONED = ("causalmixft", "jax", "numpy", "torch", "tabpfn", "scikit-learn")


@functools.cache
def _file_sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def tfm_sha256(tfm: Any) -> str:
    """sha256 of the TFM checkpoint file the settings' `tfm` resolves to."""
    import finetune

    return _file_sha256(str(finetune.load_tfm(tfm).model_path))


@functools.cache
def versions() -> dict[str, str | None]:
    """Versions of the packages that decide a record's numbers."""
    import importlib.metadata as md

    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in _VERSIONED:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def _num(v: Any) -> Any:
    """NaN and inf become None (records are strict JSON); numpy scalars plain."""
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


def _codes(y: Any, classes: np.ndarray) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes.tolist())}
    return np.asarray([index[v] for v in np.asarray(y).tolist()], np.int64)


def _minority(meta: Any, classes: np.ndarray) -> int:
    counts = dict(zip(meta.classes, meta.class_counts, strict=True))
    order = sorted(classes.tolist(), key=lambda c: (counts[c], str(c)))
    return classes.tolist().index(order[0])


def _curve(history: list[dict[str, Any]]) -> tuple[list[list[Any]], list[float]]:
    """[[step, val ROC-AUC, test ROC-AUC, val_score]] and each evaluation's seconds."""
    rows = [
        [
            int(h["step"]),
            _num(h.get("val_roc_auc")),
            _num(h.get("test_roc_auc")),
            _num(h["val_score"]),
        ]
        for h in history
    ]
    return rows, [round(float(h["seconds"]), 3) for h in history]


def _scores(
    clf: Any, split: Any, history: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[list[Any]], list[float]]:
    classes = np.asarray(clf.classes_)
    y_val, y_test = _codes(split.y_val, classes), _codes(split.y_test, classes)
    p_val, p_test = clf.predict_proba(split.X_val), clf.predict_proba(split.X_test)
    minority = _minority(split.meta, classes)
    curve, seconds = _curve(history)
    out: dict[str, Any] = {
        "test_roc_auc": metrics.roc_auc(y_test, p_test),
        "val_roc_auc": metrics.roc_auc(y_val, p_val),
        "minority_class": _num(classes[minority]),
        **metrics.f1_scores(y_val, p_val, y_test, p_test, minority),
        # The validation score the run stopped on (val_score: the real rows' ROC-AUC
        # for validation="real", the synthetic rows' for "synthetic") against test.
        "gap": metrics.correlation_gap(
            [c[3] if c[3] is not None else math.nan for c in curve],
            [c[2] if c[2] is not None else math.nan for c in curve],
        ),
        "best_step": int(clf.best_step_),
        "stop_reason": str(clf.stop_reason_),
        "n_evals": len(curve),
        "steps_run": len(clf.steps_),
    }
    return {k: _num(v) for k, v in out.items()}, curve, seconds


def _fit(
    cell: Cell,
    method: Method,
    settings: Mapping[str, Any],
    split_options: Mapping[str, Any],
) -> dict[str, Any]:
    import finetune
    from benchmarks.datasets import make_split

    split = make_split(cell.dataset, cell.n_train, seed=cell.seed, **split_options)
    kw = method.estimator_kwargs(settings)
    clf = finetune.CausalMixFTClassifier(random_state=cell.seed, **kw)
    clf.fit(
        split.X_train,
        split.y_train,
        split.X_val,
        split.y_val,
        X_test=split.X_test,
        y_test=split.y_test,
    )
    scores, curve, seconds = _scores(clf, split, clf.history_)
    best = metrics.to_best(
        [
            {"step": c[0], "val_score": c[3], "seconds": s}
            for c, s in zip(curve, seconds, strict=True)
        ]
    )
    return {
        "metrics": scores,
        "curve": curve,
        "timing": {
            "fit_s": round(float(clf.fit_seconds_), 3),
            "scm_s": round(float(clf.scm_seconds_), 3),
            "curve_seconds": seconds,
            "seconds_to_best": best[1],
        },
        "split": {
            "n_val": len(split.y_val),
            "n_test": len(split.y_test),
        },
    }


def run_cell(
    cell: Cell,
    method: Method,
    settings: Mapping[str, Any],
    settings_sha256: str,
    split_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Runs one cell and returns its record (unsealed: the writer adds the hash).

    Args:
      cell: the cell.
      method: the cell's method.
      settings: the profile's estimator keyword arguments.
      settings_sha256: `Profile.settings_sha256()`, carried by the record.
      split_options: more keyword arguments of `make_split`.

    Returns:
      The record: key, cell, method, status (and error), metrics, curve
      ([step, val ROC-AUC, test ROC-AUC, val_score] per evaluation), timing,
      versions, TFM checkpoint sha256 and machine (host, load averages, threads).
    """
    import torch

    # One core per cell: the estimates and Ray's num_cpus=1 both assume it, and the
    # thread count must match for Ray and serial runs to give the same numbers.
    torch.set_num_threads(1)
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    record: dict[str, Any] = {
        "key": cell.key,
        "cell": cell._asdict(),
        "method": method.as_json(),
        "settings_sha256": settings_sha256,
        "env": {
            "versions": versions(),
            "tfm_sha256": tfm_sha256(settings.get("tfm")),
        },
    }
    try:
        fitted = _fit(cell, method, settings, split_options or {})
        record.update(fitted, status="ok", error=None)
    except Exception as err:  # recorded, not raised: one bad cell must not stop a grid
        record.update(status="error", error=f"{type(err).__name__}: {err}")
        record.setdefault("timing", {})
    record["timing"]["wall_s"] = round(time.perf_counter() - t0, 3)
    record["machine"] = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "cpu_count": os.cpu_count(),
        "loadavg_start": [round(v, 2) for v in load0],
        "loadavg_end": [round(v, 2) for v in os.getloadavg()],
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    record["written_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return record
