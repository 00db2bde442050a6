"""The study's metrics: per run (one cell) and across the methods of a study.

Per run (computed in the cell, from the fitted model's probabilities):

* **test ROC-AUC**: binary: ``roc_auc_score(y == positive, p_positive)``; multiclass:
  one-vs-rest macro average, ``(1/k) * sum_c AUC(y == c, p_c)`` over the ``k`` classes
  present in the test rows (probabilities renormalised over them).
* **minority-class F1 and macro-F1, threshold chosen on validation**: the minority
  class ``m`` is the class with the fewest rows in the whole table. A row is predicted
  ``m`` when ``p_m >= t``, otherwise the most probable other class (for binary tables
  this is the usual threshold on the positive-class probability). ``t`` maximises the
  minority-class F1 on the validation rows, ``F1 = 2 TP / (2 TP + FP + FN)``, over the
  midpoints between consecutive distinct validation values of ``p_m`` (and half the
  smallest one, "every row is ``m``"); ties go to the smallest ``t``. The test rows are
  scored at that ``t``: minority F1 and macro-F1 (unweighted mean of the per-class F1).
  The argmax rule's values (``t`` not chosen) are recorded next to them.
* **validation-test correlation gap**: over the evaluated checkpoints ``i`` of one run,
  ``gap = 1 - pearson(val_i, test_i)``. Undefined (NaN) with fewer than 3 checkpoints or
  when either series is constant (a correlation needs variation; a constant series is
  not "perfectly correlated"): those runs are left out of the medians and counted.
* **steps and seconds to the best validation score**: the first evaluation whose
  ``val_score`` is the run's maximum; its step and its seconds since fine-tuning began.

Across methods (``group`` = the runs of one (dataset, n_train, seed), one per method):

* **raw improvement**: ``AUC_method - AUC_zero-shot`` of the same group.
* **normalised score**, TabArena/TabRepo style: ``(AUC - worst) / (best - worst)`` with
  best and worst over the methods of the group (1 = best, 0 = worst); a group whose
  methods all score the same gives every method 1 (TabRepo's normalised error: 0).
  The **normalised improvement** is ``score_method - score_zero-shot``. Why: ROC-AUC
  ranges differ per table (0.6 on one, 0.99 on another), so raw differences weight the
  easy-to-move tables; min-max within the group puts every table on [0, 1] so that a
  median over tables treats them alike. The paper's formula is not public; note that it
  depends on which methods the study holds (a new, worse method changes the others').
* **median +- IQR per method**: median and the 25th / 75th percentiles over groups.
* **average rank per method**: ranks within each group (1 = highest AUC, ties share the
  mean rank), averaged over groups.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Test ROC-AUC: binary, or one-vs-rest macro over the classes present.

    Args:
      y: (n,) integer class codes in ``0..k-1``.
      p: (n, k) class probabilities.

    Returns:
      The ROC-AUC, NaN when fewer than two classes are present.

    Examples:
      >>> p1 = np.array([0.1, 0.4, 0.35, 0.8])
      >>> roc_auc(np.array([0, 0, 1, 1]), np.c_[1 - p1, p1])
      0.75
    """
    from sklearn.metrics import roc_auc_score

    y, p = np.asarray(y), np.asarray(p, np.float64)
    present = np.unique(y)
    if len(present) < 2:
        return float("nan")
    if p.shape[1] == 2:
        return float(roc_auc_score(y, p[:, 1]))
    q = p
    if len(present) < p.shape[1]:
        # Only then: dividing by sums that are 1 up to rounding would break ties.
        q = p[:, present] / np.clip(p[:, present].sum(1, keepdims=True), 1e-12, None)
    yy = np.searchsorted(present, y)
    if len(present) == 2:
        return float(roc_auc_score(yy, q[:, 1]))
    return float(roc_auc_score(yy, q, multi_class="ovr", average="macro"))


def _f1(y: np.ndarray, pred: np.ndarray, c: int) -> float:
    tp = int(np.sum((pred == c) & (y == c)))
    wrong = int(np.sum((pred == c) != (y == c)))  # FP + FN
    return 2 * tp / (2 * tp + wrong) if tp + wrong else 0.0


def predict_with_threshold(p: np.ndarray, minority: int, t: float) -> np.ndarray:
    """Class codes: ``minority`` where ``p[:, minority] >= t``, else the argmax of
    the other classes."""
    others = np.asarray(p, np.float64).copy()
    others[:, minority] = -np.inf
    return np.where(p[:, minority] >= t, minority, others.argmax(1))


def choose_threshold(y: np.ndarray, p: np.ndarray, minority: int) -> float:
    """The threshold on ``p[:, minority]`` that maximises the minority F1 on (y, p).

    Candidates are the midpoints between consecutive distinct values of
    ``p[:, minority]`` and half the smallest value; ties go to the smallest.

    Examples:
      >>> p1 = np.array([0.125, 0.5, 0.375, 0.75])
      >>> choose_threshold(np.array([0, 0, 1, 1]), np.c_[1 - p1, p1], 1)
      0.25
    """
    u = np.unique(np.asarray(p, np.float64)[:, minority])
    cands = np.concatenate([[u[0] / 2], (u[1:] + u[:-1]) / 2])
    f1s = [_f1(y, predict_with_threshold(p, minority, t), minority) for t in cands]
    return float(cands[int(np.argmax(f1s))])


def f1_scores(
    y_val: np.ndarray,
    p_val: np.ndarray,
    y_test: np.ndarray,
    p_test: np.ndarray,
    minority: int,
) -> dict[str, float]:
    """Minority-class F1 and macro-F1 on the test rows, threshold chosen on validation.

    Args:
      y_val, p_val: validation codes (n_v,) and probabilities (n_v, k).
      y_test, p_test: test codes (n_t,) and probabilities (n_t, k).
      minority: the minority class's code.

    Returns:
      ``threshold``, ``minority_f1``, ``macro_f1`` (at the threshold) and
      ``minority_f1_argmax``, ``macro_f1_argmax`` (most probable class).
    """
    k = p_test.shape[1]
    t = choose_threshold(y_val, p_val, minority)
    pred = predict_with_threshold(p_test, minority, t)
    arg = np.asarray(p_test).argmax(1)
    return {
        "threshold": t,
        "minority_f1": _f1(y_test, pred, minority),
        "macro_f1": float(np.mean([_f1(y_test, pred, c) for c in range(k)])),
        "minority_f1_argmax": _f1(y_test, arg, minority),
        "macro_f1_argmax": float(np.mean([_f1(y_test, arg, c) for c in range(k)])),
    }


def correlation_gap(val: Sequence[float], test: Sequence[float]) -> float:
    """``1 - pearson(val, test)`` over a run's checkpoints; NaN when undefined.

    Undefined: fewer than 3 finite pairs, or either series constant.

    Examples:
      >>> correlation_gap([0.6, 0.7, 0.8], [0.5, 0.6, 0.7])
      0.0
      >>> correlation_gap([0.6, 0.6, 0.6], [0.5, 0.6, 0.7])
      nan
    """
    v, t = np.asarray(val, np.float64), np.asarray(test, np.float64)
    ok = np.isfinite(v) & np.isfinite(t)
    v, t = v[ok], t[ok]
    if len(v) < 3 or np.ptp(v) == 0 or np.ptp(t) == 0:
        return float("nan")
    r = float(np.corrcoef(v, t)[0, 1])
    return round(1.0 - r, 12)


def to_best(curve: Sequence[Mapping[str, float]]) -> tuple[int, float]:
    """(step, seconds) of the first evaluation with the highest ``val_score``
    (None / NaN scores never win; all undefined: the first evaluation)."""
    scores = np.asarray(
        [math.nan if c["val_score"] is None else c["val_score"] for c in curve],
        np.float64,
    )
    i = int(np.nanargmax(scores)) if np.isfinite(scores).any() else 0
    return int(curve[i]["step"]), float(curve[i]["seconds"])


def normalised_scores(scores: Mapping[str, float]) -> dict[str, float]:
    """``(s - worst) / (best - worst)`` over one group's methods (all equal: 1).

    Examples:
      >>> normalised_scores({"a": 0.7, "b": 0.8, "c": 0.9})
      {'a': 0.0, 'b': 0.5, 'c': 1.0}
    """
    vals = [v for v in scores.values() if math.isfinite(v)]
    lo, hi = min(vals), max(vals)
    if hi == lo:
        return {m: 1.0 if math.isfinite(v) else math.nan for m, v in scores.items()}
    return {m: round((v - lo) / (hi - lo), 12) for m, v in scores.items()}


def ranks(scores: Mapping[str, float]) -> dict[str, float]:
    """Rank of each method in one group: 1 = highest score, ties share the mean.

    Examples:
      >>> ranks({"a": 0.7, "b": 0.9, "c": 0.9})
      {'a': 3.0, 'b': 1.5, 'c': 1.5}
    """
    from scipy.stats import rankdata

    names = list(scores)
    r = rankdata([-scores[m] for m in names], method="average")
    return {m: float(x) for m, x in zip(names, r, strict=True)}


def median_iqr(values: Iterable[float]) -> tuple[float, float, float]:
    """(median, 25th, 75th percentile) of the finite values; NaNs if none."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)])
    if len(v) == 0:
        return (math.nan, math.nan, math.nan)
    q25, q50, q75 = np.percentile(v, [25, 50, 75])
    return (float(q50), float(q25), float(q75))


def group_table(
    rows: Iterable[Mapping[str, object]], baseline: str
) -> dict[str, dict[str, list[float]]]:
    """Per method: raw and normalised improvement over `baseline` and rank, one
    value per group holding `baseline` and at least one other finite method.

    Args:
      rows: one per run, with ``dataset``, ``n_train``, ``seed``, ``method`` and
        ``test_roc_auc``.
      baseline: the zero-shot method's name.

    Returns:
      ``{method: {"improvement": [...], "normalised": [...], "rank": [...]}}``.
    """
    groups: dict[tuple, dict[str, float]] = {}
    for r in rows:
        key = (r["dataset"], r["n_train"], r["seed"])
        auc = r["test_roc_auc"]
        if isinstance(auc, (int, float)) and math.isfinite(auc):
            groups.setdefault(key, {})[str(r["method"])] = float(auc)
    out: dict[str, dict[str, list[float]]] = {}
    for scores in groups.values():
        if baseline not in scores or len(scores) < 2:
            continue
        norm, rank = normalised_scores(scores), ranks(scores)
        for m, s in scores.items():
            d = out.setdefault(m, {"improvement": [], "normalised": [], "rank": []})
            d["improvement"].append(s - scores[baseline])
            d["normalised"].append(norm[m] - norm[baseline])
            d["rank"].append(rank[m])
    return out
