"""Pure-JAX feature maps, and `Pipeline`, which chains them with a predictor.

These reproduce, bit for bit where floating point allows, the preprocessing that a
fitted DoWhy mechanism applies before its sklearn model: DoWhy's encoders for
categorical parents (one-hot, or its CatBoost target encoding: both are a lookup
table indexed by the category code), `StandardScaler`, `MinMaxScaler`,
`PolynomialFeatures`, and the permutation from sklearn's sorted `classes_` to a
column's category order. Each is an immutable PyTree (`pytree_dataclass`), so a
distilled mechanism saves and loads like any other.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from jaxscm._pytree import pytree_dataclass, static


def _lead(a: Array, ndim: int) -> Array:
    # Explicit leading axes: the test suite runs with rank promotion set to "raise".
    return jnp.reshape(a, (1,) * (ndim - jnp.ndim(a)) + tuple(jnp.shape(a)))


@pytree_dataclass
class Encode:
    """Replaces categorical code columns by rows of a lookup table.

    Column `columns[i]` of the input holds category codes 0..k-1 (as floats); it is
    replaced by the `tables[i][code]` row (width w). Other columns pass through. The
    output keeps the input column order, each encoded column expanded in place: this
    is the layout of DoWhy's `auto_apply_encoders`. A one-hot encoder is the table
    `eye(k)` (with zero rows for categories the encoder never saw, as sklearn's
    `handle_unknown="ignore"` does); DoWhy's CatBoost encoder is a (k, 1) table of
    per-category target means.

    Attributes:
      tables: one (k, w) table per encoded column.
      columns: the encoded input columns, increasing.

    Examples:
      >>> import jax.numpy as jnp
      >>> enc = Encode(tables=(jnp.eye(3),), columns=(1,))
      >>> enc(jnp.array([[0.5, 2.0]])).tolist()
      [[0.5, 0.0, 0.0, 1.0]]
    """

    tables: tuple[Float[Array, "k w"], ...]
    columns: tuple[int, ...] = static()

    def __post_init__(self) -> None:
        if len(self.tables) != len(self.columns):
            raise ValueError(
                f"Encode needs one table per encoded column: {len(self.tables)} "
                f"tables, "
                f"columns {self.columns}"
            )
        if list(self.columns) != sorted(set(self.columns)):
            raise ValueError(f"Encode.columns must be increasing, got {self.columns}")
        for c, t in zip(self.columns, self.tables, strict=True):
            if jnp.ndim(t) != 2 or jnp.shape(t)[0] == 0:
                raise ValueError(
                    f"Encode table for column {c} must be (k, w) with k >= 1, got "
                    f"shape {jnp.shape(t)}"
                )

    def __call__(self, x: Float[Array, "n p"]) -> Float[Array, "n q"]:
        """Encodes the categorical columns of `x`."""
        lookup = dict(zip(self.columns, self.tables, strict=True))
        parts = []
        for j in range(x.shape[1]):
            if j in lookup:
                table = lookup[j]
                code = jnp.clip(x[:, j].astype(jnp.int32), 0, table.shape[0] - 1)
                parts.append(table[code].astype(x.dtype))
            else:
                parts.append(x[:, j : j + 1])
        return jnp.concatenate(parts, axis=1) if parts else x


@pytree_dataclass
class Embed:
    """`Encode` with its layout held as data: every input column gets `w` slots.

    Column `j` becomes `tables[j][code]` where `is_categorical[j]`, and `[x_j, 0, ...,
    0]` otherwise; output column `j * w + o` is slot `o` of input column `j`. Models
    that encode different parents (or none) thus share one array shape and one
    PyTree structure, which is what `jaxscm.stack` needs to evaluate them as one
    group: it rewrites `Encode` + predictor into `Embed` + the predictor with its
    input rows (or tree features) moved to this layout, computing the same values.

    Attributes:
      tables: (p, k, w) per-column lookup tables (zeros for numeric columns).
      is_categorical: (p,) which input columns hold category codes.

    Examples:
      >>> import jax.numpy as jnp
      >>> e = Embed(tables=jnp.stack([jnp.zeros((2, 2)), jnp.eye(2)]),
      ...           is_categorical=jnp.array([False, True]))
      >>> e(jnp.array([[0.5, 1.0]])).tolist()
      [[0.5, 0.0, 0.0, 1.0]]
    """

    tables: Float[Array, "p k w"]
    is_categorical: Bool[Array, " p"]

    def __call__(self, x: Float[Array, "n p"]) -> Float[Array, "n q"]:
        """Embeds the columns of `x`."""
        n, p = x.shape
        k, w = self.tables.shape[1], self.tables.shape[2]
        code = jnp.clip(jnp.nan_to_num(x).astype(jnp.int32), 0, k - 1)  # (n, p)
        looked = self.tables[jnp.arange(p)[None, :], code].astype(x.dtype)  # (n, p, w)
        numeric = jnp.concatenate(
            [x[:, :, None], jnp.zeros((n, p, w - 1), x.dtype)], axis=2
        )
        out = jnp.where(self.is_categorical[None, :, None], looked, numeric)
        return out.reshape(n, p * w)


@pytree_dataclass
class Standardize:
    """`(x - mean) / scale`, sklearn's `StandardScaler.transform`.

    Examples:
      >>> import jax.numpy as jnp
      >>> s = Standardize(mean=jnp.array([1.0]), scale=jnp.array([2.0]))
      >>> s(jnp.array([[5.0]])).tolist()
      [[2.0]]
    """

    mean: Float[Array, " p"]
    scale: Float[Array, " p"]

    def __call__(self, x: Float[Array, "n p"]) -> Float[Array, "n p"]:
        """Standardises the columns of `x`."""
        return (x - _lead(self.mean, x.ndim)) / _lead(self.scale, x.ndim)


@pytree_dataclass
class Affine:
    """`x * scale + offset` (sklearn's `MinMaxScaler.transform`; also un-standardises
    a surrogate's output). Works on (n, p) inputs and on scalar outputs (n,).

    Examples:
      >>> import jax.numpy as jnp
      >>> a = Affine(scale=jnp.array(2.0), offset=jnp.array(1.0))
      >>> a(jnp.array([1.0, 2.0])).tolist()
      [3.0, 5.0]
    """

    scale: Float[Array, "*p"]
    offset: Float[Array, "*p"]

    def __call__(self, x: Float[Array, "n ..."]) -> Float[Array, "n ..."]:
        """Scales and shifts `x`."""
        return x * _lead(self.scale, x.ndim) + _lead(self.offset, x.ndim)


@pytree_dataclass
class Polynomial:
    """Monomials of the input columns, sklearn's `PolynomialFeatures` with its
    `powers_` matrix: output column `i` is `prod_j x[:, j] ** powers[i][j]`.

    The powers are static small integers, evaluated as repeated products, so negative
    inputs stay exact (a float `pow` would go through `exp(log x)`).

    Examples:
      >>> import jax.numpy as jnp
      >>> poly = Polynomial(powers=((1, 0), (0, 1), (2, 0), (1, 1)))
      >>> poly(jnp.array([[-2.0, 3.0]])).tolist()
      [[-2.0, 3.0, 4.0, -6.0]]
    """

    powers: tuple[tuple[int, ...], ...] = static()

    def __call__(self, x: Float[Array, "n p"]) -> Float[Array, "n q"]:
        """Computes the monomials."""
        n = x.shape[0]
        cols = []
        for row in self.powers:
            if len(row) != x.shape[1]:
                raise ValueError(
                    f"Polynomial expects {len(row)} input columns, got {x.shape[1]}"
                )
            term = jnp.ones((n,), x.dtype)
            # The order of the products follows sklearn: column by column, each
            # column's power as repeated multiplication.
            for j, k in enumerate(row):
                for _ in range(k):
                    term = term * x[:, j]
            cols.append(term)
        return jnp.stack(cols, axis=1)


@pytree_dataclass
class Select:
    """Picks columns: output column `i` is input column `index[i]`, or zeros where
    `index[i]` is -1. Maps class probabilities in sklearn's sorted `classes_` order to
    a column's category order (a category the classifier never saw gets probability 0).

    Examples:
      >>> import jax.numpy as jnp
      >>> Select(index=(1, -1, 0))(jnp.array([[0.25, 0.75]])).tolist()
      [[0.75, 0.0, 0.25]]
    """

    index: tuple[int, ...] = static()

    def __call__(self, x: Float[Array, "n k"]) -> Float[Array, "n q"]:
        """Selects the columns."""
        zeros = jnp.zeros((x.shape[0],), x.dtype)
        return jnp.stack([x[:, i] if i >= 0 else zeros for i in self.index], axis=1)


@pytree_dataclass
class Cast:
    """Rounds the input through another float dtype and back.

    sklearn's exact trees cast their input to float32 before comparing with the
    (float64) thresholds; in an x64 model this step reproduces that rounding.

    Examples:
      >>> import jax.numpy as jnp
      >>> Cast(dtype="float32")(jnp.array([[0.5]])).tolist()
      [[0.5]]
    """

    dtype: str = static(default="float32")

    def __call__(self, x: Float[Array, "n p"]) -> Float[Array, "n p"]:
        """Rounds `x` through `dtype`."""
        return x.astype(self.dtype).astype(x.dtype)


@pytree_dataclass
class Pipeline:
    """Applies `steps` in order: feature maps, a predictor, then output maps.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxscm import Linear
      >>> f = Pipeline(steps=(Standardize(jnp.array([1.0]), jnp.array([2.0])),
      ...                     Linear(jnp.array([3.0]), jnp.array(0.0))))
      >>> f(jnp.array([[5.0]])).tolist()
      [6.0]
    """

    steps: tuple[Any, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        if not self.steps:
            raise ValueError("Pipeline needs at least one step")
        for s in self.steps:
            if not callable(s):
                raise TypeError(f"Pipeline step {type(s).__name__} is not callable")

    @property
    def n_inputs(self) -> int:
        """Number of input columns, if the first step knows it (else -1)."""
        return int(getattr(self.steps[0], "n_inputs", -1))

    def __call__(self, x: Float[Array, "n p"]) -> Float[Array, "n ..."]:
        """Runs the steps."""
        for step in self.steps:
            x = step(x)
        return x
