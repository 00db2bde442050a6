"""`mixup`: MixUp for tables, within class (our documented definition).

A new row of class c mixes two real rows i, j of class c, drawn uniformly with
replacement, with lambda ~ Beta(alpha, alpha):

* numeric columns: lambda * x_i + (1 - lambda) * x_j;
* integer columns: the same, rounded to the nearest whole number;
* categorical columns: the value of one parent, i when lambda > 0.5 else j (the
  parent that dominates the numeric mix), so a mixed row never holds a category
  pair no real row of its class has in a single column.

Mixing within class keeps the label exact (zhang2018mixup mixes labels too; a
classifier's pool needs hard labels), so class requests are conditional: `y=` gives
rows of exactly those classes and `sample(n)` draws classes in their training
shares. A class with one row yields copies of that row. Sampling is a few array
operations, so the fine-tuning loop can draw a fresh batch every step.
"""

from __future__ import annotations

import numpy as np

from finetune.augmenters._base import Generator


class Mixup(Generator):
    """Within-class MixUp behind the generator interface.

    Args:
      alpha: the Beta(alpha, alpha) concentration of lambda; small alpha keeps rows
        near a parent (0.2 in the MixUp paper), alpha = 1 mixes uniformly.

    Examples:
      >>> import numpy as np, pandas as pd
      >>> X = pd.DataFrame({"a": np.arange(10.0) + 0.5})
      >>> Xs, ys = Mixup().fit(X, np.arange(10) % 2).sample(4, y="0")
      >>> bool(Xs["a"].between(0.5, 8.5).all()), sorted(set(ys))
      (True, ['0'])
    """

    name = "mixup"
    conditional = "conditional"
    streaming = True

    def __init__(self, *, alpha: float = 0.4) -> None:
        if not (isinstance(alpha, (int, float)) and np.isfinite(alpha) and alpha > 0):
            raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")
        self.alpha = float(alpha)

    def _fit(self, codes: np.ndarray, seed: int) -> None:
        self._x = codes[:, :-1]
        y = codes[:, -1].astype(np.int64)
        self._rows = [np.flatnonzero(y == c) for c in range(len(self.classes_))]

    def _sample(self, n: int, seed: int, labels: np.ndarray | None) -> np.ndarray:
        labels = self._labels(n, seed, labels)
        rng = self._rng(seed)
        i = np.empty(n, np.int64)
        j = np.empty(n, np.int64)
        for c, rows in enumerate(self._rows):
            where = np.flatnonzero(labels == c)
            i[where] = rng.choice(rows, len(where))
            j[where] = rng.choice(rows, len(where))
        lam = rng.beta(self.alpha, self.alpha, n)[:, None]
        xi, xj = self._x[i], self._x[j]
        out = np.empty((n, self._x.shape[1] + 1))
        out[:, :-1] = lam * xi + (1 - lam) * xj
        out[:, -1] = labels
        for col, kind in enumerate(self._kinds()):
            if kind == "integer":
                out[:, col] = np.round(out[:, col])
            elif kind == "categorical":
                out[:, col] = np.where(lam[:, 0] > 0.5, xi[:, col], xj[:, col])
        return out
