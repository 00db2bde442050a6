"""Noise models: resampled empirical values, and parametric families via numpyro.

Parametric noise follows scipy's loc/scale convention, which is what DoWhy's
`ScipyDistribution` stores: `N = loc + scale * Z`, with `Z` drawn from the family's
standard form with its shape parameters. That makes distilling a fitted scipy
distribution an exact parameter copy.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpyro.distributions as nd
from jaxtyping import Array, Float

from jaxscm._pytree import pytree_dataclass, static


@pytree_dataclass
class Empirical:
    """Noise drawn uniformly with replacement from stored values (DoWhy's
    `EmpiricalDistribution`).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> e = Empirical(values=jnp.array([1.0, 2.0]))
      >>> bool(jnp.isin(e.sample(jax.random.key(0), 5), e.values).all())
      True
    """

    values: Float[Array, " m"]

    def __post_init__(self) -> None:
        if jnp.ndim(self.values) != 1 or jnp.shape(self.values)[0] == 0:
            raise ValueError(
                f"Empirical needs a non-empty 1-d array of values, got shape "
                f"{jnp.shape(self.values)}"
            )

    def sample(self, key: jax.Array, n: int) -> Float[Array, " n"]:
        """Draws `n` values with replacement."""
        idx = jax.random.randint(key, (n,), 0, self.values.shape[0])
        return self.values[idx]


# family -> (number of shape parameters, standard-form sampler(key, shapes, n))
def _std(make: Callable[..., nd.Distribution]) -> Callable[..., Array]:
    return lambda key, shapes, n: make(*shapes).sample(key, (n,))


PARAMETRIC_FAMILIES: dict[str, tuple[int, Callable[..., Array]]] = {
    "norm": (0, lambda key, shapes, n: jax.random.normal(key, (n,))),
    "uniform": (0, lambda key, shapes, n: jax.random.uniform(key, (n,))),
    "laplace": (0, lambda key, shapes, n: jax.random.laplace(key, (n,))),
    "logistic": (0, lambda key, shapes, n: jax.random.logistic(key, (n,))),
    "cauchy": (0, lambda key, shapes, n: jax.random.cauchy(key, (n,))),
    "gumbel_r": (0, lambda key, shapes, n: jax.random.gumbel(key, (n,))),
    "expon": (0, lambda key, shapes, n: jax.random.exponential(key, (n,))),
    "halfnorm": (0, lambda key, shapes, n: jnp.abs(jax.random.normal(key, (n,)))),
    "t": (1, _std(lambda df: nd.StudentT(df))),
    "gamma": (1, _std(lambda a: nd.Gamma(a, 1.0))),
    "lognorm": (1, _std(lambda s: nd.LogNormal(0.0, s))),
    "beta": (2, _std(lambda a, b: nd.Beta(a, b))),
}


@pytree_dataclass
class Parametric:
    """Noise `loc + scale * Z` with `Z` from a standard parametric family.

    Attributes:
      shapes: shape parameters of the family, in scipy's order (e.g. `(df,)` for "t").
      loc, scale: location and scale.
      family: a scipy.stats name in `PARAMETRIC_FAMILIES` ("norm", "uniform", "t", ...).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> g = Parametric(
      ...     shapes=(), loc=jnp.array(0.0), scale=jnp.array(2.0), family="norm"
      ... )
      >>> g.sample(jax.random.key(0), 3).shape
      (3,)
    """

    shapes: tuple[Float[Array, ""], ...]
    loc: Float[Array, ""]
    scale: Float[Array, ""]
    family: str = static(default="norm")

    def __post_init__(self) -> None:
        if self.family not in PARAMETRIC_FAMILIES:
            raise ValueError(
                f"unsupported noise family {self.family!r}; supported: "
                f"{sorted(PARAMETRIC_FAMILIES)}"
            )
        want = PARAMETRIC_FAMILIES[self.family][0]
        if len(self.shapes) != want:
            raise ValueError(
                f"noise family {self.family!r} takes {want} shape parameter(s), "
                f"got {len(self.shapes)}"
            )

    def sample(self, key: jax.Array, n: int) -> Float[Array, " n"]:
        """Draws `n` values."""
        z = PARAMETRIC_FAMILIES[self.family][1](key, self.shapes, n)
        return self.loc + self.scale * z.astype(jnp.result_type(self.loc))


def gaussian(scale: float = 1.0, loc: float = 0.0, *, dtype=jnp.float32) -> Parametric:
    """Gaussian noise N(loc, scale^2).

    Examples:
      >>> float(gaussian(2.0).scale)
      2.0
    """
    return Parametric(
        shapes=(),
        loc=jnp.asarray(loc, dtype),
        scale=jnp.asarray(scale, dtype),
        family="norm",
    )
