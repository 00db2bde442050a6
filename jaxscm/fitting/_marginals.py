"""Marginal-faithful DoWhy mechanisms for numeric nodes (`MarginalOptions`).

An additive-noise model `y = f(pa) + n` gives symmetric, unbounded, continuous
values. Real columns are often on a grid, bounded, zero-inflated or skewed, and a
classifier tells such synthetic rows from real ones easily. Per numeric non-root
column, decided once from its training values (so every graph gets the same
treatment of the column; roots resample the column and keep its marginal already):

* **snap**: a column with at most `snap_max_values` distinct values snaps to them;
  one on a regular grid (every value `min + k * step`, at most `grid_max_points`
  grid points) snaps to that grid; an integer column rounds. Snapped values are
  what children see (they were fitted on real, on-grid values).
* **clip**: a bounded column stays in its observed range - bounded below at its
  minimum when that is >= 0 or holds a point mass, above at its maximum when that
  holds a point mass or the column lies in [0, 1] (snapping bounds it anyway).
* **point mass**: the most frequent value, when it holds >= `point_mass_min` of the
  rows (and at least `min_rest_rows` rows are elsewhere), is a mixture component
  (`PointMassFCM`): a classifier gate for "at the point" (the node's predictor
  family, logistic or gradient boosting) and the node's model fitted on the other
  rows. Not for snapped columns with few values (snapping keeps every value's mass).
* **transform**: a column (its rows off the point mass) with |skewness| >=
  `skew_min` or excess kurtosis >= `kurtosis_min` is modelled in a quantile-normal
  space: `PostNonlinearModel(f, n, QuantileNormal)`, `y = Q^-1(f(pa) + n)` with
  `Q` the piecewise-linear map from the sorted distinct values to the standard
  normal quantiles of their mid-ranks (so the inverse stays in the observed range).

Every piece computes in NumPy with the same arithmetic as its distilled JAX form
(`jaxscm._marginal`), so `distill` stays exact.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class MarginalOptions:
    """Which marginal fixes `fit_scm` applies to numeric nodes (module docstring).

    Attributes:
      snap: snap few-valued / grid columns to their support, round integer columns.
      clip: keep bounded columns inside their observed range.
      point_mass: model a frequent value as a gated point mass.
      transform: fit skewed / heavy-tailed columns in quantile-normal space.
      snap_max_values: at most this many distinct values -> snap to them.
      grid_max_points: at most this many grid points -> snap to the grid.
      point_mass_min: a value holding at least this share of rows is a point mass.
      min_rest_rows: rows off the point needed to fit the rest.
      skew_min: |skewness| from which a column is transformed.
      kurtosis_min: excess kurtosis from which a column is transformed.

    Examples:
      >>> MarginalOptions.off().any
      False
      >>> MarginalOptions().point_mass_min
      0.05
    """

    snap: bool = True
    clip: bool = True
    point_mass: bool = True
    transform: bool = True
    snap_max_values: int = 20
    grid_max_points: int = 256
    point_mass_min: float = 0.05
    min_rest_rows: int = 20
    skew_min: float = 1.0
    kurtosis_min: float = 3.0

    def __post_init__(self) -> None:
        for name in ("snap", "clip", "point_mass", "transform"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"MarginalOptions.{name} must be a bool")
        if self.snap_max_values < 1 or self.grid_max_points < 2:
            raise ValueError(
                "MarginalOptions: snap_max_values must be >= 1, grid_max_points >= 2"
            )
        if not 0 < self.point_mass_min < 1 or self.min_rest_rows < 2:
            raise ValueError(
                "MarginalOptions: point_mass_min must be in (0, 1), min_rest_rows >= 2"
            )
        if self.skew_min < 0 or self.kurtosis_min < 0:
            raise ValueError("MarginalOptions: skew_min and kurtosis_min must be >= 0")

    @classmethod
    def off(cls) -> MarginalOptions:
        """Every fix off: plain additive-noise models (the model before these)."""
        return cls(snap=False, clip=False, point_mass=False, transform=False)

    @property
    def any(self) -> bool:
        """Whether any fix is on."""
        return self.snap or self.clip or self.point_mass or self.transform

    def to_json(self) -> dict[str, Any]:
        """The options as a JSON-serialisable dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class ColumnPlan:
    """What `plan_column` decided for one column."""

    point: float | None = None
    support: np.ndarray | None = None
    grid: bool = False
    round: bool = False
    lo: float | None = None
    hi: float | None = None
    transform: bool = False

    @property
    def mapped(self) -> bool:
        return (
            self.support is not None
            or self.round
            or self.lo is not None
            or (self.hi is not None)
        )

    def label(self) -> str:
        """Suffix for `FitInfo.mechanisms` (e.g. "+qn+pointmass+clip")."""
        parts = [
            "qn" if self.transform else "",
            "pointmass" if self.point is not None else "",
            ("grid" if self.grid else "snap") if self.support is not None else "",
            "round" if self.round else "",
            "clip" if self.lo is not None or self.hi is not None else "",
        ]
        return "".join(f"+{p}" for p in parts if p)


def plan_column(y: np.ndarray, kind: str, options: MarginalOptions) -> ColumnPlan:
    """Decides the fixes for a numeric column from its training values (rules in the
    module docstring)."""
    y = np.asarray(y, np.float64)
    y = y[np.isfinite(y)]  # `fit` passes imputed codes; other callers may not
    if y.shape[0] == 0:
        return ColumnPlan()
    u, counts = np.unique(y, return_counts=True)
    n = y.shape[0]
    support, grid = None, False
    if options.snap and len(u) >= 2:
        if len(u) <= options.snap_max_values:
            support = u
        else:
            step = float(np.diff(u).min())
            k = (u - u[0]) / step
            points = int(round(k[-1])) + 1
            on_grid = np.abs(k - np.round(k)).max() < 1e-6 * max(1.0, k[-1])
            is_int = kind == "integer" and step == 1.0
            if on_grid and points <= options.grid_max_points and not is_int:
                support, grid = u[0] + step * np.arange(points), True
    few = support is not None and not grid
    point = None
    if options.point_mass and not few:
        top = int(np.argmax(counts))
        share = counts[top] / n
        if share >= options.point_mass_min and n - counts[top] >= options.min_rest_rows:
            point = float(u[top])
    rest = y if point is None else y[y != point]
    transform = False
    if options.transform and not few and len(np.unique(rest)) > options.snap_max_values:
        from scipy import stats

        skew = float(stats.skew(rest))
        kurt = float(stats.kurtosis(rest))
        transform = abs(skew) >= options.skew_min or kurt >= options.kurtosis_min
    lo = hi = None
    if options.clip and support is None:
        share = dict(zip(u.tolist(), (counts / n).tolist(), strict=True))
        if u[0] >= 0 or share[u[0]] >= options.point_mass_min:
            lo = float(u[0])
        if share[u[-1]] >= options.point_mass_min or (u[0] >= 0 and u[-1] <= 1):
            hi = float(u[-1])
    rounded = options.snap and kind == "integer" and support is None
    return ColumnPlan(
        point=point,
        support=support,
        grid=grid,
        round=rounded,
        lo=lo,
        hi=hi,
        transform=transform,
    )


def nearest(y: np.ndarray, support: np.ndarray) -> np.ndarray:
    """NumPy twin of `jaxscm._marginal.nearest` (ties to the lower value)."""
    hi_i = np.clip(np.searchsorted(support, y), 0, support.shape[0] - 1)
    lo_i = np.clip(hi_i - 1, 0, support.shape[0] - 1)
    lo, hi = support[lo_i], support[hi_i]
    return np.where(np.abs(y - lo) <= np.abs(hi - y), lo, hi)
