"""Output transforms shared by predictors: raw values, or class probabilities."""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

Output = Literal["identity", "sigmoid", "softmax"]
OUTPUTS = ("identity", "sigmoid", "softmax")


def finish(z: Float[Array, ...], output: str) -> Float[Array, ...]:
    """Maps raw predictor values to the predictor's output.

    "identity" returns `z` ((n,) for a regressor, (n, k) for a predictor that already
    yields probabilities). "sigmoid" takes binary logits of shape (n,) and returns
    probabilities of shape (n, 2) as [1 - s, s], matching sklearn's `predict_proba`
    column order. "softmax" takes (n, k) logits and returns (n, k) probabilities.
    """
    if output == "identity":
        return z
    if output == "sigmoid":
        p1 = jax.nn.sigmoid(z)
        return jnp.stack([1.0 - p1, p1], axis=-1)
    if output == "softmax":
        return jax.nn.softmax(z, axis=-1)
    raise ValueError(f"unknown output {output!r}; expected one of {OUTPUTS}")


def n_outputs(width: int, output: str) -> int:
    """Number of output columns for a raw width (1 means a scalar output)."""
    return 2 if output == "sigmoid" else width
