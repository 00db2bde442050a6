"""`table_augment`: bootstrap rows with feature subsets, or classic perturbation.

Our documented definition of TableAugment (after the public reimplementation the
research notes cite), in two modes:

* ``mode="subset"`` (default): rows are bootstrapped within class; the rows are cut
  into batches of `batch_size`, and each batch keeps a random subset of 50-100 % of
  the features (`keep`), the others *absent*;
* ``mode="perturb"``: the classic perturbations of every bootstrapped row - Gaussian
  noise of `noise` x the class's column standard deviation on numeric and integer
  columns (integers rounded, clipped to the observed range), each cell swapped with
  probability `swap` for the same column of another row of the class, and each cell
  masked (made absent) with probability `mask`.

What "absent" is: TabPFN itself accepts NaN features, but the generator contract
(`Generator.sample`) is finite codes in the training schema, and the project's one
missing-value policy (`jaxscm.fitting.prepare`) fills a missing cell with the
column's median (numeric; rounded for integer) or its most frequent category. An
absent feature is filled the same way, from the whole training table, so the TFM
sees exactly what it sees for a missing cell of an imputed table.

Bootstrapping within class makes class requests conditional (`y=` gives rows of the
asked classes; `sample(n)` the training shares). The "random column as a new
target" variant of the reimplementation changes the task, not the rows, and does not
fit the (X, y)-of-this-table contract, so it is not offered. Sampling is a few
array operations (streaming).
"""

from __future__ import annotations

import numpy as np

from finetune.augmenters._base import Generator

_MODES = ("subset", "perturb")


def _probability(name: str, v: object) -> float:
    if not (isinstance(v, (int, float)) and 0 <= v <= 1):
        raise ValueError(f"{name} must be a number in [0, 1], got {v!r}")
    return float(v)


class TableAugment(Generator):
    """Bootstrap with feature subsets, or noise / swap / masking.

    Args:
      mode: "subset" or "perturb" (module docstring).
      keep: (low, high) share of features a batch keeps in "subset" mode.
      batch_size: rows per feature subset in "subset" mode.
      noise: Gaussian noise scale, in class standard deviations ("perturb").
      swap: per-cell swap probability ("perturb").
      mask: per-cell masking probability ("perturb").

    Examples:
      >>> import numpy as np, pandas as pd
      >>> X = pd.DataFrame({"a": np.arange(12.0), "b": np.arange(12) % 3})
      >>> Xs, ys = TableAugment().fit(X, np.arange(12) % 2).sample(8, y="1")
      >>> Xs.shape, sorted(set(ys))
      ((8, 2), ['1'])
    """

    name = "table_augment"
    conditional = "conditional"
    streaming = True

    def __init__(
        self,
        *,
        mode: str = "subset",
        keep: tuple[float, float] = (0.5, 1.0),
        batch_size: int = 32,
        noise: float = 0.1,
        swap: float = 0.1,
        mask: float = 0.1,
    ) -> None:
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        lo, hi = (float(k) for k in keep)
        if not 0 < lo <= hi <= 1:
            raise ValueError(
                f"keep must be (low, high) with 0 < low <= high <= 1, got {keep!r}"
            )
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if not (isinstance(noise, (int, float)) and 0 <= noise < np.inf):
            raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
        self.mode, self.keep, self.batch_size = mode, (lo, hi), batch_size
        self.noise = float(noise)
        self.swap, self.mask = _probability("swap", swap), _probability("mask", mask)

    def _fit(self, codes: np.ndarray, seed: int) -> None:
        x = codes[:, :-1]
        y = codes[:, -1].astype(np.int64)
        self._x = x
        self._rows = [np.flatnonzero(y == c) for c in range(len(self.classes_))]
        fill = np.empty(x.shape[1])
        for j, kind in enumerate(self._kinds()):
            if kind == "categorical":
                vals, counts = np.unique(x[:, j], return_counts=True)
                fill[j] = vals[np.argmax(counts)]
            else:
                med = float(np.median(x[:, j]))
                fill[j] = np.round(med) if kind == "integer" else med
        self.fill_ = fill
        self._sd = np.stack([x[r].std(axis=0) for r in self._rows])
        self._lo, self._hi = x.min(axis=0), x.max(axis=0)

    def _sample(self, n: int, seed: int, labels: np.ndarray | None) -> np.ndarray:
        labels = self._labels(n, seed, labels)
        rng = self._rng(seed)
        pick = np.empty(n, np.int64)
        for c, rows in enumerate(self._rows):
            where = np.flatnonzero(labels == c)
            pick[where] = rng.choice(rows, len(where))
        x = self._x[pick].copy()
        d = x.shape[1]
        absent = np.zeros((n, d), bool)
        if self.mode == "subset":
            for start in range(0, n, self.batch_size):
                share = rng.uniform(*self.keep)
                k = max(1, int(round(share * d)))
                drop = rng.permutation(d)[k:]
                absent[start : start + self.batch_size, drop] = True
        else:
            numeric = np.array([k != "categorical" for k in self._kinds()])
            x[:, numeric] += (
                self.noise
                * self._sd[labels][:, numeric]
                * rng.normal(size=(n, numeric.sum()))
            )
            for j, kind in enumerate(self._kinds()):
                if kind == "integer":
                    x[:, j] = np.clip(np.round(x[:, j]), self._lo[j], self._hi[j])
            swapped = rng.uniform(size=(n, d)) < self.swap
            for c, rows in enumerate(self._rows):
                sel = swapped & (labels == c)[:, None]
                donors = self._x[rng.choice(rows, n)]
                x[sel] = donors[sel]
            absent = rng.uniform(size=(n, d)) < self.mask
        x = np.where(absent, self.fill_[None, :], x)
        return np.column_stack([x, labels.astype(np.float64)])
