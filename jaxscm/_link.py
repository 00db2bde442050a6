"""Invertible links `g` of post-nonlinear models `y = g(f(parents) + noise)`.

The names match DoWhy's `InvertibleIdentityFunction`, `InvertibleExponentialFunction`
and `InvertibleLogarithmicFunction`.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

LINKS = {
    "identity": (lambda z: z, lambda y: y),
    "exp": (jnp.exp, jnp.log),
    "log": (jnp.log, jnp.exp),
}


def apply_link(z: Float[Array, " n"], link: str) -> Float[Array, " n"]:
    """Applies the link `g`."""
    return LINKS[link][0](z)


def invert_link(y: Float[Array, " n"], link: str) -> Float[Array, " n"]:
    """Applies the inverse link `g^-1`."""
    return LINKS[link][1](y)
