"""`smote`: imbalanced-learn's SMOTE (SMOTE-NC / SMOTEN with categorical features).

SMOTE draws a new row of class c on the segment between a real row of c and one of
its k nearest neighbours within c. With categorical features it is SMOTE-NC (numeric
columns interpolated, each categorical column takes the most frequent value among
the neighbours; the median standard deviation of the numeric columns weighs a
categorical mismatch in the distance), and with categorical features only it is
SMOTEN (value-difference metric). Integer columns are interpolated and rounded.

Class requests are conditional by construction - SMOTE only makes rows of the
classes it is asked for: `sample(n, y=...)` makes exactly the asked classes, and
`sample(n)` (no y) asks for the classes in their training shares (so it does not
rebalance unless told: `y="balanced"`). Each class needs at least two rows; k is
capped at the smallest class size minus one. No training: the neighbours are found
when sampling, so a pool is drawn once per fine-tuning run (`streaming` False).
"""

from __future__ import annotations

import numpy as np

from finetune.augmenters._base import Generator


class Smote(Generator):
    """SMOTE oversampling behind the generator interface.

    Args:
      k_neighbors: neighbours per row (capped at the smallest class size - 1).

    Examples:
      >>> import numpy as np, pandas as pd
      >>> X = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3})
      >>> gen = Smote().fit(X, np.arange(20) % 2)
      >>> Xs, ys = gen.sample(6, y="1")
      >>> Xs.shape, sorted(set(ys))
      ((6, 2), ['1'])
    """

    name = "smote"
    conditional = "conditional"
    streaming = False

    def __init__(self, *, k_neighbors: int = 5) -> None:
        if not isinstance(k_neighbors, int) or k_neighbors < 1:
            raise ValueError(
                f"k_neighbors must be an integer >= 1, got {k_neighbors!r}"
            )
        self.k_neighbors = k_neighbors

    def _fit(self, codes: np.ndarray, seed: int) -> None:
        y = codes[:, -1].astype(np.int64)
        counts = np.bincount(y, minlength=len(self.classes_))
        small = int(np.argmin(counts))
        if counts[small] < 2:
            raise ValueError(
                f"class {self.classes_[small]!r} of target column "
                f"{self.columns_[-1].name!r} has {counts[small]} row; SMOTE needs at "
                f"least 2 rows per class - add rows of it or drop the class"
            )
        self._x = codes[:, :-1]
        self._y = y
        self.k_ = int(min(self.k_neighbors, counts.min() - 1))

    def _sampler(self, strategy: dict[int, int], seed: int):  # noqa: ANN202
        from imblearn.over_sampling import SMOTE, SMOTEN, SMOTENC

        kinds = self._kinds()
        cat = [j for j, k in enumerate(kinds) if k == "categorical"]
        common = dict(
            sampling_strategy=strategy, k_neighbors=self.k_, random_state=seed
        )
        if not cat:
            return SMOTE(**common)
        if len(cat) == len(kinds):
            return SMOTEN(**common)
        return SMOTENC(categorical_features=cat, **common)

    def _sample(self, n: int, seed: int, labels: np.ndarray | None) -> np.ndarray:
        labels = self._labels(n, seed, labels)
        want = np.bincount(labels, minlength=len(self.classes_))
        have = np.bincount(self._y, minlength=len(self.classes_))
        strategy = {c: int(have[c] + want[c]) for c in range(len(want)) if want[c]}
        seed32 = int(self._rng(seed).integers(2**31 - 1))
        xr, yr = self._sampler(strategy, seed32).fit_resample(self._x, self._y)
        new_x, new_y = xr[len(self._x) :], np.asarray(yr[len(self._x) :])
        out = np.empty((n, self._x.shape[1] + 1))
        for c in strategy:
            rows = new_x[new_y == c]
            where = np.flatnonzero(labels == c)
            if len(rows) != len(where):
                raise AssertionError(f"SMOTE made {len(rows)} rows of class {c}")
            out[where, :-1] = rows
        out[:, -1] = labels
        for j, kind in enumerate(self._kinds()):
            if kind != "numeric":
                out[:, j] = np.round(out[:, j])
        return out
