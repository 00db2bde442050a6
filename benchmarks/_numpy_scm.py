"""A plain NumPy topological sampling loop over a distilled `jaxscm.SCM`.

The throughput benchmark's "what you would write by hand" baseline: the same fitted
parameters, nodes in topological order, every mechanism vectorised over rows with
NumPy (matmuls, a gather loop for trees), noise from `numpy.random.Generator`. It
supports the mechanism families the benchmark distils (roots, additive noise and
classifier nodes over Linear / MLP / TreeEnsemble predictors, Gaussian or empirical
noise) and raises `NotImplementedError` naming the node for anything else.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxscm import (
    MLP,
    SCM,
    Additive,
    Classifier,
    Empirical,
    Linear,
    Parametric,
    Root,
    TreeEnsemble,
)

_ACT = {
    "identity": lambda z: z,
    "relu": lambda z: np.maximum(z, 0.0),
    "tanh": np.tanh,
    "logistic": lambda z: 1.0 / (1.0 + np.exp(-z)),
}


def _finish(z: np.ndarray, output: str) -> np.ndarray:
    if output == "identity":
        return z
    if output == "sigmoid":
        p1 = 1.0 / (1.0 + np.exp(-z))
        return np.stack([1.0 - p1, p1], axis=-1)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _predict(f: Any, x: np.ndarray, node: str) -> np.ndarray:
    if isinstance(f, Linear):
        coef, icpt = np.asarray(f.coef), np.asarray(f.intercept)
        z = (
            x @ coef + icpt
            if coef.shape[0]
            else np.broadcast_to(icpt, (len(x), *icpt.shape))
        )
        return _finish(z, f.output)
    if isinstance(f, MLP):
        h = x
        for w, b in zip(f.weights[:-1], f.biases[:-1], strict=True):
            h = _ACT[f.activation](h @ np.asarray(w) + np.asarray(b))
        z = h @ np.asarray(f.weights[-1]) + np.asarray(f.biases[-1])
        if z.shape[-1] == 1:
            z = z[:, 0]
        return _finish(z, f.output)
    if isinstance(f, TreeEnsemble):
        feat, thr = np.asarray(f.feature), np.asarray(f.threshold)
        left, right = np.asarray(f.left), np.asarray(f.right)
        miss, value = np.asarray(f.missing_left), np.asarray(f.value)
        rows = np.arange(len(x))
        total = np.zeros((len(x), value.shape[-1]), value.dtype)
        for t in range(feat.shape[0]):
            nd = np.zeros(len(x), np.int64)
            for _ in range(f.depth):
                xv = x[rows, feat[t, nd]]
                go_left = np.where(np.isnan(xv), miss[t, nd], xv <= thr[t, nd])
                nd = np.where(go_left, left[t, nd], right[t, nd])
            total += value[t, nd]
        if f.aggregation == "mean":
            total /= feat.shape[0]
        z = total + np.asarray(f.base)
        if z.shape[-1] == 1:
            z = z[:, 0]
        return _finish(z, f.output)
    raise NotImplementedError(
        f"node {node!r}: no NumPy baseline for {type(f).__name__}"
    )


def _noise(
    noise: Any, rng: np.random.Generator, n: int, dtype: Any, node: str
) -> np.ndarray:
    if isinstance(noise, Empirical):
        vals = np.asarray(noise.values)
        return vals[rng.integers(0, len(vals), n)]
    if isinstance(noise, Parametric) and noise.family == "norm":
        z = rng.standard_normal(
            n, dtype=np.float32 if dtype == np.float32 else np.float64
        )
        return (np.asarray(noise.loc) + np.asarray(noise.scale) * z).astype(dtype)
    raise NotImplementedError(f"node {node!r}: no NumPy baseline for {noise!r}")


def numpy_sample(scm: SCM, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draws `n` rows from `scm` with NumPy, node by node in topological order.

    Args:
      scm: a single-DAG model of supported mechanisms.
      n: rows.
      rng: the NumPy generator.

    Returns:
      (n, d) float32 samples, columns in node order.

    Raises:
      NotImplementedError: naming the node, for an unsupported mechanism.
    """
    dtype = np.float32
    x = np.empty((n, scm.n_nodes), dtype)
    for i, (mech, pa) in enumerate(zip(scm.mechanisms, scm.parents, strict=True)):
        name = scm.nodes[i]
        xp = x[:, list(pa)]
        if isinstance(mech, Root):
            x[:, i] = _noise(mech.noise, rng, n, dtype, name)
        elif isinstance(mech, Additive) and mech.link == "identity":
            pred = _predict(mech.f, xp, name)
            if mech.discrete:
                pred = np.round(pred)
            x[:, i] = pred + _noise(mech.noise, rng, n, dtype, name)
        elif isinstance(mech, Classifier):
            p = _predict(mech.f, xp, name)
            u = rng.random(n, dtype=dtype)
            code = (np.cumsum(p, axis=-1) < u[:, None]).sum(-1)
            x[:, i] = np.minimum(code, p.shape[-1] - 1)
        else:
            raise NotImplementedError(
                f"node {name!r}: no NumPy baseline for {type(mech).__name__}"
            )
    return x
