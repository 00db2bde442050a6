"""Synthetic-data quality report: how close a synthetic table is to the real one.

`quality_report(real, synthetic, ...)` returns a `QualityReport`; `write_report`
writes it as markdown, JSON and PNG plots (``causalmixft report`` on the command
line). Metrics follow SDMetrics' definitions where they exist, so the numbers compare
with SDV users' reports (no dependency on SDV). Every score below is in [0, 1].

Column kinds are decided once, on the real table, by `jaxscm.infer_schema`'s rules
(text, bools and integer columns with <= 10 values are categorical; a constant column
is categorical); "integer" columns are compared as numbers, at float32 precision
(the samplers' own: a float64 grid value such as 0.35 and its float32 sample differ
in the last bits, which a tree detector would separate perfectly). Missing values are
ignored per metric as stated.

* Column shapes (per column; the headline is their mean):
  KSComplement = 1 - max_x |F_r(x) - F_s(x)| for numbers (F: empirical CDFs);
  TVComplement = 1 - 0.5 * sum_c |p_r(c) - p_s(c)| for categories (p: shares over
  the union of labels). 1.0: identical marginals; 0.0: disjoint. Missing dropped.
* Column-pair trends (per pair; the headline is their mean):
  CorrelationSimilarity = 1 - |rho_r - rho_s| / 2 (Pearson) for two numeric
  columns; ContingencySimilarity = 1 - 0.5 * sum_ab |P_r(a, b) - P_s(a, b)| of the
  normalised contingency tables otherwise, a numeric column of a mixed pair cut
  into 10 equal-width bins over its real range (outer edges open). Rows missing
  either value are dropped; an undefined correlation (constant column) is None.
* Detection: min(n_real, n_synthetic) rows of each table (seeded), categories one-hot
  (the 50 most frequent real labels, the rest in one column), labelled real = 1 and
  synthetic = 0; StratifiedKFold(`folds`) out-of-fold ROC-AUC of a logistic
  regression (median-imputed, standardised) and of a HistGradientBoostingClassifier
  (default parameters); rows with identical features share a fold (stratified
  group k-fold; SDMetrics uses plain stratified k-fold, under which a copied row's
  twin in the training fold drives the AUC below 0.5). 0.5: indistinguishable;
  1.0: always told apart. SDMetrics'
  score is 1 - mean_folds(max(AUC_fold, 0.5) * 2 - 1) (1.0: indistinguishable).
* Utility (needs `target` and `holdout`): TRTR = an HGB trained on the real rows,
  TSTR = the same trained on the synthetic rows, both scored on the holdout:
  ROC-AUC (binary: of the minority class; multiclass: one-vs-rest macro over the
  classes in the holdout) and F1 (binary: of the minority class, the class with the
  fewest real rows; multiclass: macro). TSTR close to TRTR: the synthetic rows teach
  what the real rows teach; 0.5 AUC: nothing.
* Class share: each class's share of the target in both tables, and
  minority_share_drift = |s_syn - s_real| / s_real of the real minority class.
* Privacy: DCR, per synthetic row, the distance to its closest real row; the
  distance of two rows is the mean over columns of min(|a - b| / range_real, 1)
  for numbers (0/1 mismatch for a constant column) and 0/1 mismatch for categories
  (both missing 0, one missing 1): SDMetrics' DCR, a Gower distance in [0, 1]. The
  baseline is the same for the holdout rows; synthetic rows much closer to the real
  rows than the holdout rows are suggests copying. exact_copy_share: synthetic rows
  at distance 0. At most 5,000 rows of each table enter (seeded).
* SCM (a `jaxscm.fit_scm` model): per edge with discovery probability > 0, that
  probability and the share of the ensemble's sampled DAGs that contain it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from finetune import _quality_metrics as qm
from finetune import _quality_sections as sections
from finetune._quality_result import ColumnShape, PairTrend, QualityReport, ScmEdge
from finetune._quality_write import write_report

if TYPE_CHECKING:
    import jaxscm

__all__ = [
    "ColumnShape",
    "PairTrend",
    "QualityReport",
    "ScmEdge",
    "check_columns",
    "quality_report",
    "split_holdout",
    "write_report",
]


def check_columns(frames: Mapping[str, pd.DataFrame], target: str | None) -> None:
    """Refuses tables the report cannot compare, naming the table and the column.

    Args:
      frames: table name (a file name, or "real", ...) -> DataFrame; the first one
        is the reference.
      target: the target column, or None.

    Raises:
      ValueError: a table with no rows or columns, a target missing from a table,
        or columns that differ from the first table's (the names are listed).
    """
    (ref_name, ref), *others = frames.items()
    for name, df in frames.items():
        if df.shape[0] == 0 or df.shape[1] == 0:
            raise ValueError(f"{name} is empty (shape {df.shape}); it needs rows")
        if target is not None and target not in df.columns:
            raise ValueError(
                f"target column {target!r} is missing from {name}; columns are "
                f"{[str(c) for c in df.columns]}"
            )
        if len(set(df.columns)) != df.shape[1]:
            raise ValueError(f"{name} has duplicate column names; rename them")
    for name, df in others:
        missing = [str(c) for c in ref.columns if c not in set(df.columns)]
        extra = [str(c) for c in df.columns if c not in set(ref.columns)]
        if missing or extra:
            raise ValueError(
                f"{name} does not have the columns of {ref_name}: missing {missing}, "
                f"extra {extra}; the tables need the same column names (any order)"
            )


def split_holdout(
    real: pd.DataFrame, target: str, *, seed: int = 0, fraction: float = 0.3
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout): `fraction` of each target class held out, seeded.

    What ``causalmixft report`` does when no ``--holdout`` is given; the same split
    as ``causalmixft finetune``'s test set (`finetune._mixing.stratified_split`).

    Examples:
      >>> df = pd.DataFrame({"x": range(10), "y": ["a", "b"] * 5})
      >>> [len(t) for t in split_holdout(df, "y")]
      [6, 4]
    """
    from finetune._mixing import stratified_split

    y = real[target].astype("string").fillna("<missing>").to_numpy(str)
    codes = np.unique(y, return_inverse=True)[1]
    train, hold = stratified_split(np.random.default_rng([seed, 7]), codes, fraction)
    return (
        real.iloc[np.sort(train)].reset_index(drop=True),
        real.iloc[np.sort(hold)].reset_index(drop=True),
    )


def quality_report(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    *,
    target: str | None = None,
    holdout: pd.DataFrame | None = None,
    model: jaxscm.Ensemble | None = None,
    seed: int = 0,
    folds: int = 3,
) -> QualityReport:
    """Measures a synthetic table against the real one (metrics: module docstring).

    Args:
      real: the real rows the generator learnt from (TRTR trains on them).
      synthetic: the generated rows, the same columns in any order.
      target: the categorical target column: enables utility and class share.
      holdout: real rows the generator never saw: the utility test set and the
        privacy baseline. Without it utility is None (nothing is split here).
      model: a `jaxscm.fit_scm` ensemble: adds the SCM edge table.
      seed: seeds row sampling and the classifiers.
      folds: detection cross-validation folds (>= 2).

    Returns:
      The `QualityReport`.

    Raises:
      ValueError: naming the table and column: different columns, an empty table,
        a target missing from a table, a real column with only missing values, a
        numeric column holding non-numbers in another table, `folds` < 2.

    Examples:
      >>> import pandas as pd
      >>> df = pd.DataFrame({"x": [0.1 * i for i in range(30)], "c": list("ab") * 15})
      >>> r = quality_report(df, df)
      >>> r.column_shapes, r.exact_copy_share
      (1.0, 1.0)
    """
    if not isinstance(folds, int) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2, got {folds!r}")
    frames = {"real": real, "synthetic": synthetic}
    if holdout is not None:
        frames["holdout"] = holdout
    check_columns(frames, target)
    names = [str(c) for c in real.columns]
    frames = {t: df.rename(columns=str)[names] for t, df in frames.items()}
    cols = [
        qm.encode(frames, n, k, lab)
        for n, (k, lab) in sections.kinds(real, target).items()
    ]
    notes: list[str] = []
    rng = np.random.default_rng(seed)
    shapes = tuple(sections.shape(c) for c in cols)
    pairs = sections.pairs(cols)
    detect, m = sections.detection(cols, rng, seed, folds, notes)
    util = sections.utility(cols, target, holdout is not None, seed, notes)
    privacy = sections.privacy(cols, holdout is not None, rng, notes)
    n_dags, edges = qm.scm_edges(model, names, notes)
    return QualityReport(
        n_real=len(real),
        n_synthetic=len(synthetic),
        n_holdout=None if holdout is None else len(holdout),
        target=target,
        seed=seed,
        folds=folds,
        holdout_origin="given" if holdout is not None else "none",
        columns=shapes,
        pairs=pairs,
        column_shapes=sections.mean(s.score for s in shapes),
        column_pair_trends=sections.mean(p.score for p in pairs),
        detection_rows=m,
        detection_auc_lr=detect.get("lr", (None, None))[0],
        detection_auc_hgb=detect.get("hgb", (None, None))[0],
        detection_score_lr=detect.get("lr", (None, None))[1],
        detection_score_hgb=detect.get("hgb", (None, None))[1],
        **util,
        **privacy,
        scm_n_dags=n_dags,
        scm_edges=tuple(ScmEdge(*e) for e in edges),
        notes=tuple(notes),
    )
