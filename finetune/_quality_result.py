"""The result types of `finetune.quality.quality_report`."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class ColumnShape:
    """One column's shape score and the binned shares its plot needs.

    Attributes:
      name, kind: the column and its kind ("numeric", "integer", "categorical").
      metric: "KSComplement" or "TVComplement"; score: its value (None: no values).
      missing_real, missing_synthetic: the share of missing entries.
      bins: numeric: the histogram edges (len(real) + 1); categorical: the labels
        (the most frequent real ones, the rest as "(other)").
      real, synthetic: the share of non-missing values per bin / label.
    """

    name: str
    kind: str
    metric: str
    score: float | None
    missing_real: float
    missing_synthetic: float
    bins: tuple[Any, ...]
    real: tuple[float, ...]
    synthetic: tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class PairTrend:
    """One column pair: "CorrelationSimilarity" (with both Pearson correlations) or
    "ContingencySimilarity" (correlations None)."""

    a: str
    b: str
    metric: str
    score: float | None
    real: float | None
    synthetic: float | None


@dataclasses.dataclass(frozen=True)
class ScmEdge:
    """A discovered edge: P(parent -> child) from discovery, share of DAGs with it."""

    parent: str
    child: str
    probability: float
    dag_share: float


@dataclasses.dataclass(frozen=True)
class QualityReport:
    """The result of `quality_report`; the module docstring defines every number.

    A field that could not be computed is None (the reason is in `notes` or
    `utility_note`). `to_json` gives a plain JSON dict, `headline` the main numbers.
    """

    n_real: int
    n_synthetic: int
    n_holdout: int | None
    target: str | None
    seed: int
    folds: int
    holdout_origin: str
    columns: tuple[ColumnShape, ...]
    pairs: tuple[PairTrend, ...]
    column_shapes: float | None
    column_pair_trends: float | None
    detection_rows: int
    detection_auc_lr: float | None
    detection_auc_hgb: float | None
    detection_score_lr: float | None
    detection_score_hgb: float | None
    tstr_auc: float | None
    trtr_auc: float | None
    tstr_f1: float | None
    trtr_f1: float | None
    utility_note: str | None
    class_share_real: dict[str, float] | None
    class_share_synthetic: dict[str, float] | None
    minority_class: str | None
    minority_share_drift: float | None
    dcr_median: float
    dcr_p5: float
    dcr_holdout_median: float | None
    dcr_holdout_p5: float | None
    exact_copy_share: float
    holdout_exact_copy_share: float | None
    scm_n_dags: int | None
    scm_edges: tuple[ScmEdge, ...]
    notes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """A plain JSON dict (lists, no NaN: a missing number is None)."""
        return _plain(dataclasses.asdict(self))

    def headline(self) -> dict[str, float | None]:
        """The headline numbers, by name."""
        names = (
            "column_shapes column_pair_trends detection_auc_lr detection_auc_hgb "
            "tstr_auc trtr_auc tstr_f1 trtr_f1 minority_share_drift dcr_median "
            "dcr_holdout_median exact_copy_share"
        ).split()
        return {n: getattr(self, n) for n in names}

    def pair_matrix(self) -> tuple[list[str], np.ndarray]:
        """(column names, (d, d) pair-trend scores), NaN on the diagonal / undefined."""
        names = [c.name for c in self.columns]
        pos = {n: i for i, n in enumerate(names)}
        m = np.full((len(names), len(names)), np.nan)
        for p in self.pairs:
            if p.score is not None:
                m[pos[p.a], pos[p.b]] = m[pos[p.b], pos[p.a]] = p.score
        return names, m


def _plain(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (np.integer, np.bool_)):
        return v.item()
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    return v
