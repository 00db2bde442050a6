"""The demo's comparison: zero-shot, plain fine-tuning and CausalMixFT on one split.

On a table with a few labelled training rows: the zero-shot TFM (in context on the
training rows), plain fine-tuning, and CausalMixFT (fit an SCM ensemble to the
training rows, then fine-tune on real + fresh synthetic rows), each scored by ROC-AUC
on the held-out test rows. Both fine-tuning runs hold out a quarter of the training
rows for early stopping and put them back into the inference context afterwards, so
every method sees the same labelled rows and nothing else.

The splits come from the caller (`causalmixft demo` takes them from the vendored
benchmark datasets), so this module never imports `benchmarks`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from finetune._report import demo_report, plot_curves, write_text


def compare_on_split(
    split: Any,
    *,
    seed: int,
    tfm: Any = None,
    max_steps: int = 80,
    lr: float = 1e-4,
    ratio: float = 1.0,
    n_dags: int = 8,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Fits and scores the three methods on one split.

    Args:
      split: has `X_train`, `y_train`, `X_test`, `y_test` and `meta.positive_class`
        (or `meta` None: the second class is positive), like
        `benchmarks.datasets.make_split`'s result.
      seed: the runs' seed.
      tfm: TFM checkpoint (None: the shipped one).
      max_steps: fine-tuning steps at most.
      lr: learning rate.
      ratio: synthetic rows per real row (CausalMixFT).
      n_dags: graphs in the SCM ensemble (CausalMixFT).

    Returns:
      `(results, estimators)`: method -> its scores and timings, and method -> the
      fitted `CausalMixFTClassifier`.
    """
    from sklearn.metrics import roc_auc_score

    from finetune._estimator import CausalMixFTClassifier

    X, y, X_test, y_test = split.X_train, split.y_train, split.X_test, split.y_test
    pos = split.meta.positive_class if split.meta is not None else None
    common = dict(
        tfm=tfm,
        random_state=seed,
        max_steps=max_steps,
        lr=lr,
        eval_every=10,
        patience=4,
    )
    runs = {
        "zero-shot": CausalMixFTClassifier("none", **{**common, "max_steps": 0}),
        "plain fine-tuning": CausalMixFTClassifier("none", **common),
        "CausalMixFT": CausalMixFTClassifier(
            "causalmix", ratio=ratio, n_dags=n_dags, verbose=True, **common
        ),
    }
    results = {}
    for name, est in runs.items():
        print(f"\n== {name}")
        t0 = time.perf_counter()
        # the test rows are only scored along the way (for the curves), never used
        est.fit(X, y, X_test=X_test, y_test=y_test)
        wall = time.perf_counter() - t0
        proba = est.predict_proba(X_test)
        col = list(est.classes_).index(pos) if pos in list(est.classes_) else 1
        auc = float(
            roc_auc_score((y_test == est.classes_[col]).to_numpy(), proba[:, col])
        )
        steps = [s["seconds"] for s in est.steps_]
        results[name] = {
            "test_roc_auc": auc,
            "seconds": wall,
            "steps": len(est.steps_),
            "kept_step": est.best_step_,
            "stop_reason": est.stop_reason_,
            "scm_seconds": est.scm_seconds_,
            "median_step_seconds": float(np.median(steps)) if steps else 0.0,
        }
        detail = [f"{wall:.1f} s"]
        if est.scm_seconds_ > 0.01:
            detail.append(f"SCM ensemble fit {est.scm_seconds_:.1f} s")
        if steps:
            detail.append(f"{len(steps)} steps, kept step {est.best_step_}")
        print(f"{name}: test ROC-AUC {auc:.4f}  ({'; '.join(detail)})")
    return results, runs


def run_demo(
    splits: Iterable[tuple[int, Any]],
    out: str | os.PathLike[str],
    *,
    dataset: str,
    tfm: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Runs `compare_on_split` on each split and writes the curves and results.

    Writes ``demo_curves.png`` (the first split's training curves),
    ``demo_results.md`` and ``demo_results.json`` into `out`, and prints the table.

    Args:
      splits: `(seed, split)` pairs; a generator loads each split when it is reached.
      out: output folder (created if needed).
      dataset: the dataset's name, for the titles.
      tfm: TFM checkpoint (None: the shipped one).
      **options: `compare_on_split` options (max_steps, lr, ratio, n_dags).

    Returns:
      The JSON record written to ``demo_results.json``.

    Raises:
      ValueError: `splits` is empty.
    """
    t_all = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seeds, per_seed, sizes = [], [], {}
    tfm_name = tfm or "the shipped default checkpoint"
    for seed, split in splits:
        print(
            f"causalmixft demo: {dataset} (split seed {seed}), {len(split.y_train)} "
            f"training rows ({split.X_train.shape[1]} features), "
            f"{len(split.y_test)} test rows; TFM: "
            f"{tfm or 'shipped default checkpoint'}; offline"
        )
        results, runs = compare_on_split(split, seed=seed, tfm=tfm, **options)
        if not seeds:
            sizes = {"n_train": len(split.y_train), "n_test": len(split.y_test)}
            fitted = {k: v for k, v in runs.items() if k != "zero-shot"}
            plot_curves(
                out / "demo_curves.png",
                fitted,
                baseline={"zero-shot (test)": results["zero-shot"]["test_roc_auc"]},
                title=f"{dataset}, {sizes['n_train']} training rows, split seed "
                f"{seed}: ROC-AUC",
            )
        seeds.append(seed)
        per_seed.append(results)
    if not seeds:
        raise ValueError("run_demo needs at least one split")
    total = time.perf_counter() - t_all
    table, page = demo_report(
        per_seed, dataset=dataset, seeds=seeds, tfm=tfm_name, total=total, **sizes
    )
    write_text(out / "demo_results.md", page)
    record = {
        "dataset": dataset,
        **sizes,
        "seeds": seeds,
        "tfm": tfm_name,
        "results": per_seed,
        "total_seconds": total,
    }
    write_text(out / "demo_results.json", json.dumps(record, indent=1))
    print(
        f"\n{table}\n\ntotal wall time {total:.1f} s; wrote {out}/demo_curves.png, "
        "demo_results.md, demo_results.json"
    )
    return record
