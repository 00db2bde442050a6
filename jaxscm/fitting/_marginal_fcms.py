"""DoWhy mechanisms of the marginal fixes (`jaxscm.fitting._marginals`).

Imports DoWhy at import time (the classes subclass its base classes), so only the
fitting and distillation code that uses them imports this module.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from dowhy.gcm.causal_mechanisms import FunctionalCausalModel
from dowhy.gcm.ml.regression import InvertibleFunction

from jaxscm.fitting._marginals import ColumnPlan, nearest


class QuantileNormal(InvertibleFunction):
    """The invertible function `g = Q^-1` of a quantile-normal post-nonlinear model.

    `Q` maps the sorted distinct training values `x_k` to `z_k = Phi^-1(F_k)`, `F_k`
    the mid-rank of `x_k` ((rows below + half the rows at x_k) / n), linearly in
    between and clamped outside; `evaluate` is `Q^-1` (normal space -> data, so
    samples stay inside the observed range), `evaluate_inverse` is `Q`.

    Examples:
      >>> q = QuantileNormal(np.array([0.0, 1.0, 1.0, 10.0]))
      >>> q.evaluate(q.evaluate_inverse(np.array([1.0, 5.5]))).tolist()
      [1.0, 5.5]
    """

    def __init__(self, values: np.ndarray) -> None:
        from scipy.special import ndtri

        x, counts = np.unique(np.asarray(values, np.float64), return_counts=True)
        if x.shape[0] < 2:
            raise ValueError("QuantileNormal needs at least two distinct values")
        cdf = (np.cumsum(counts) - counts / 2) / counts.sum()
        self.x_knots, self.z_knots = x, ndtri(cdf)

    def evaluate(self, X: np.ndarray) -> np.ndarray:
        return np.interp(X, self.z_knots, self.x_knots)

    def evaluate_inverse(self, X: np.ndarray) -> np.ndarray:
        return np.interp(X, self.x_knots, self.z_knots)


class PointMassFCM(FunctionalCausalModel):
    """`point` with probability `gate(pa)`, else `rest` (a DoWhy FCM with empirical
    noise), on one U(0, 1) noise as in `jaxscm._marginal.PointMass`.

    `fit` trains the gate on "y == point" and `rest` on the other rows, then sorts
    rest's residuals (their quantile function turns the uniform into a residual).
    """

    def __init__(self, point: float, gate: Any, rest: Any) -> None:
        self.point, self.gate, self.rest = float(point), gate, rest

    def fit(self, X: np.ndarray, Y: np.ndarray) -> None:
        from dowhy.gcm.util.general import shape_into_2d

        X, Y = shape_into_2d(X, Y)
        at = Y[:, 0] == self.point
        self.gate.fit(X, at.astype(np.int64))
        self.rest.fit(X[~at], Y[~at])
        noise = self.rest.noise_model
        # DoWhy keeps the fitted values in `_data` (read-only property `data`).
        noise._data = np.sort(np.asarray(noise.data, np.float64), axis=0)

    @property
    def residuals(self) -> np.ndarray:
        """Rest's sorted residuals."""
        return np.asarray(self.rest.noise_model.data, np.float64).ravel()

    def probability(self, X: np.ndarray) -> np.ndarray:
        """P(at the point | parents), (n,)."""
        proba = self.gate.predict_probabilities(X)
        return proba[:, list(self.gate.classes).index(1)]

    def draw_noise_samples(self, num_samples: int) -> np.ndarray:
        return np.random.uniform(size=(num_samples, 1))  # noqa: NPY002 - DoWhy's RNG

    def evaluate(self, parent_samples: np.ndarray, noise_samples: np.ndarray) -> Any:
        u = np.asarray(noise_samples, np.float64).ravel()
        p = self.probability(parent_samples)
        safe = np.where(p < 1, 1 - p, 1)
        v = np.where(p < 1, (u - p) / safe, 0)
        r = self.residuals
        idx = np.clip(np.floor(np.clip(v, 0, 1) * r.shape[0]), 0, r.shape[0] - 1)
        y = np.asarray(
            self.rest.evaluate(parent_samples, r[idx.astype(np.int64)].reshape(-1, 1))
        )
        return np.where(u < p, self.point, y.ravel()).reshape(-1, 1)

    def clone(self) -> PointMassFCM:
        return PointMassFCM(self.point, self.gate.clone(), self.rest.clone())


class OutputMapFCM(FunctionalCausalModel):
    """A DoWhy FCM whose values are clipped to `[lo, hi]`, rounded and snapped to
    `support` (each when given), as in `jaxscm._marginal.Mapped`."""

    def __init__(
        self,
        inner: Any,
        *,
        lo: float | None = None,
        hi: float | None = None,
        round: bool = False,
        support: np.ndarray | None = None,
    ) -> None:
        self.inner, self.lo, self.hi, self.round = inner, lo, hi, round
        self.support = None if support is None else np.asarray(support, np.float64)

    def fit(self, X: np.ndarray, Y: np.ndarray) -> None:
        self.inner.fit(X, Y)

    def output(self, y: np.ndarray) -> np.ndarray:
        """The output map alone."""
        y = np.asarray(y, np.float64)
        if self.lo is not None or self.hi is not None:
            lo = -np.inf if self.lo is None else self.lo
            hi = np.inf if self.hi is None else self.hi
            y = np.clip(y, lo, hi)
        if self.round:
            y = np.round(y)
        if self.support is not None:
            y = nearest(y, self.support)
        return y

    def draw_noise_samples(self, num_samples: int) -> np.ndarray:
        return self.inner.draw_noise_samples(num_samples)

    def evaluate(self, parent_samples: np.ndarray, noise_samples: np.ndarray) -> Any:
        return self.output(self.inner.evaluate(parent_samples, noise_samples))

    def clone(self) -> OutputMapFCM:
        return OutputMapFCM(
            self.inner.clone(),
            lo=self.lo,
            hi=self.hi,
            round=self.round,
            support=self.support,
        )


def marginal_mechanism(
    plan: ColumnPlan,
    kind: str,
    regressor: Any,
    classifier: Any,
    y: np.ndarray,
) -> Any:
    """The (unfitted) DoWhy mechanism of a numeric node under `plan`.

    Args:
      plan: from `plan_column`.
      kind: "numeric" or "integer".
      regressor, classifier: unfitted sklearn models of the node's predictor family
        (the classifier is the point-mass gate).
      y: the column's training values (the quantile-normal map is fitted on them,
        off the point mass).
    """
    from dowhy import gcm

    model = gcm.ml.SklearnRegressionModel(regressor)
    if plan.transform:
        rest_y = y if plan.point is None else y[y != plan.point]
        mech: Any = gcm.PostNonlinearModel(
            model, gcm.EmpiricalDistribution(), QuantileNormal(rest_y)
        )
    elif kind == "integer":
        mech = gcm.DiscreteAdditiveNoiseModel(model)
    else:
        mech = gcm.AdditiveNoiseModel(model)
    if plan.point is not None:
        gate = gcm.ml.SklearnClassificationModel(classifier)
        mech = PointMassFCM(plan.point, gate, mech)
    if plan.mapped:
        mech = OutputMapFCM(
            mech, lo=plan.lo, hi=plan.hi, round=plan.round, support=plan.support
        )
    return mech
