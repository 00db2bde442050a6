"""`gaussian_copula`: a Gaussian copula over empirical marginals, one per class.

For each class c, on its rows:

1. every feature becomes normal scores z = Phi^-1(u): u is the mid-rank
   (rank - 1/2) / m for a continuous column; for an integer or categorical column
   (ties) u is drawn uniformly inside the value's step of the empirical CDF (the
   distributional transform, seeded by the fit seed), so ties do not collapse to
   one score;
2. the correlation matrix of the scores, shrunk towards the identity by
   `shrinkage` (by default min(0.5, d / (10 m)) for d features and m rows of the
   class: next to nothing on a tall table, where shrinking would only weaken every
   dependence, much when rows are few) and its eigenvalues floored at 1e-6, so it
   stays positive definite with fewer rows than columns; a constant column gets no
   correlation;
3. sampling draws z ~ N(0, R), u = Phi(z), and maps u back through each column's
   inverse empirical CDF: linearly interpolated between the observed values for a
   numeric column (never outside the observed range), the observed support exactly
   for integer and categorical columns.

Being per class, it is conditional: `y=` draws from the asked classes' copulas,
`sample(n)` draws classes in their training shares. A class with one row gives
copies of it. Why our own ~60 lines and no package: SDV's `copulas` is maintained
but adds a dependency for what scipy's `norm` and NumPy do here, and it fits
parametric marginals per column where the empirical one is the honest choice for a
128-row table. Sampling is cheap, so the fine-tuning loop can stream.
"""

from __future__ import annotations

import numpy as np

from finetune.augmenters._base import Generator


class GaussianCopula(Generator):
    """A per-class Gaussian copula with empirical marginals.

    Args:
      shrinkage: weight of the identity in the correlation matrix, in [0, 1), or
        None for min(0.5, d / (10 m)) per class (module docstring).

    Examples:
      >>> import numpy as np, pandas as pd
      >>> rng = np.random.default_rng(0)
      >>> X = pd.DataFrame({"a": rng.normal(size=40), "b": rng.integers(0, 99, 40)})
      >>> Xs, ys = GaussianCopula().fit(X, np.arange(40) % 2).sample(5, y="balanced")
      >>> str(Xs["b"].dtype), sorted(set(ys))
      ('int64', ['0', '1'])
    """

    name = "gaussian_copula"
    conditional = "conditional"
    streaming = True

    def __init__(self, *, shrinkage: float | None = None) -> None:
        if shrinkage is not None and not (
            isinstance(shrinkage, (int, float)) and 0 <= shrinkage < 1
        ):
            raise ValueError(f"shrinkage must be in [0, 1) or None, got {shrinkage!r}")
        self.shrinkage = None if shrinkage is None else float(shrinkage)

    def _fit(self, codes: np.ndarray, seed: int) -> None:
        from scipy.stats import norm, rankdata

        rng = np.random.default_rng([seed, 1])
        y = codes[:, -1].astype(np.int64)
        discrete = np.array([k != "numeric" for k in self._kinds()])
        self._models = []
        for c in range(len(self.classes_)):
            x = codes[y == c, :-1]
            m, d = x.shape
            z = np.zeros((m, d))
            for j in range(d):
                hi = rankdata(x[:, j], method="max")
                if discrete[j]:
                    lo = rankdata(x[:, j], method="min") - 1
                    u = (lo + rng.uniform(size=m) * (hi - lo)) / m
                else:
                    u = (rankdata(x[:, j], method="average") - 0.5) / m
                z[:, j] = norm.ppf(np.clip(u, 0.5 / m, 1 - 0.5 / m))
            self._models.append((np.sort(x, axis=0), self._correlation(z)))

    def _correlation(self, z: np.ndarray) -> np.ndarray:
        m, d = z.shape
        s = min(0.5, d / (10 * m)) if self.shrinkage is None else self.shrinkage
        sd = z.std(axis=0)
        live = sd > 1e-12
        r = np.eye(d)
        if live.sum() > 1 and len(z) > 2:
            zc = (z[:, live] - z[:, live].mean(0)) / sd[live]
            r[np.ix_(live, live)] = zc.T @ zc / len(z)
        r = (1 - s) * r + s * np.eye(d)
        w, v = np.linalg.eigh(r)
        r = (v * np.maximum(w, 1e-6)) @ v.T
        scale = np.sqrt(np.diag(r))
        return r / scale[:, None] / scale[None, :]

    def _sample(self, n: int, seed: int, labels: np.ndarray | None) -> np.ndarray:
        from scipy.stats import norm

        labels = self._labels(n, seed, labels)
        rng = self._rng(seed)
        kinds = self._kinds()
        out = np.empty((n, len(kinds) + 1))
        out[:, -1] = labels
        for c, (xs, r) in enumerate(self._models):
            where = np.flatnonzero(labels == c)
            if not len(where):
                continue
            m = len(xs)
            u = norm.cdf(rng.multivariate_normal(np.zeros(len(kinds)), r, len(where)))
            for j, kind in enumerate(kinds):
                if kind == "numeric":
                    # mid-rank positions of the sorted values, as in the fit
                    grid = (np.arange(m) + 0.5) / m
                    out[where, j] = np.interp(u[:, j], grid, xs[:, j])
                else:
                    idx = np.minimum((u[:, j] * m).astype(np.int64), m - 1)
                    out[where, j] = xs[idx, j]
        return out
