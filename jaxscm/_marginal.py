"""Marginal-faithful node mechanisms: output maps and point-mass mixtures.

Real numeric columns are often recorded on a grid, bounded, skewed or zero-inflated;
an additive-noise model alone smears them into symmetric, off-grid, unbounded values.
Two wrappers fix the marginal of a numeric node without touching its parents' side:

* `Mapped(mech, ...)` pushes the wrapped mechanism's value through a fixed,
  per-column output map: a monotone piecewise-linear warp (the inverse of a
  quantile-normal transform, so `Mapped(Additive)` is the post-nonlinear model
  `y = g(f(pa) + n)` with `g` interpolated exactly between knots), then a clip to
  `[lo, hi]`, rounding, and snapping to the nearest value of a sorted support. Each
  step has its own 0/1 switch, and a switched-off step is an exact identity
  (`jnp.where`), so wrappers with different active steps share one structure.
* `PointMass(point, gate, rest, count)` is a two-part mixture on one U(0, 1) noise
  `u`: the node sits at `point` when `u < p(pa)` (a classifier gate), otherwise
  `rest` runs with the residual `Q((u - p) / (1 - p))`, `Q` the quantile function
  of rest's sorted empirical residuals (a U(0, 1) through `Q` is a draw from them).

Both keep `sample_noise` / `apply` pure, so `jaxscm.stack` groups and vmaps them
like any mechanism (`jaxscm._canonical` pads their per-column arrays per position).
The fitting front end builds them from DoWhy counterparts with the same arithmetic
(`jaxscm.fitting._marginals`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from jaxscm._pytree import pytree_dataclass


def interp(
    x: Float[Array, " n"], xp: Float[Array, " m"], fp: Float[Array, " m"]
) -> Float[Array, " n"]:
    """Piecewise-linear interpolation with clamped ends (`np.interp`'s rule).

    Knots `xp` must be strictly increasing. Padding knots appended as
    `xp[-1] + 1, + 2, ...` with `fp[-1]` repeated leave the values unchanged.

    Examples:
      >>> import jax.numpy as jnp
      >>> interp(jnp.array([-1.0, 0.5, 3.0]), jnp.array([0.0, 1.0]),
      ...        jnp.array([0.0, 2.0])).tolist()
      [0.0, 1.0, 2.0]
    """
    return jnp.interp(x, xp.astype(x.dtype), fp.astype(x.dtype))


def nearest(y: Float[Array, " n"], support: Float[Array, " s"]) -> Float[Array, " n"]:
    """The nearest value of a sorted `support` (ties to the lower one).

    Examples:
      >>> import jax.numpy as jnp
      >>> nearest(jnp.array([0.2, 0.25, 0.9, 7.0]), jnp.array([0.0, 0.5, 1.0])).tolist()
      [0.0, 0.0, 1.0, 1.0]
    """
    s = support.astype(y.dtype)
    hi_i = jnp.clip(jnp.searchsorted(s, y), 0, s.shape[0] - 1)
    lo_i = jnp.clip(hi_i - 1, 0, s.shape[0] - 1)
    lo, hi = s[lo_i], s[hi_i]
    return jnp.where(jnp.abs(y - lo) <= jnp.abs(hi - y), lo, hi)


@pytree_dataclass
class Mapped:
    """A numeric mechanism followed by a per-column output map.

    `y = mech(pa, noise)`, then in turn (each only where its switch is on): the warp
    `interp(y, warp_x, warp_y)`, the clip to `[lo, hi]`, rounding, snapping to the
    nearest `support` value. The noise is the wrapped mechanism's.

    Attributes:
      mech: the wrapped mechanism (`Additive`, `PointMass`, ...).
      warp_x, warp_y: (m,) knots of the monotone warp (strictly increasing x).
      warped, clipped, rounded, snapped: () boolean switches.
      lo, hi: () clip bounds.
      support: (s,) sorted values to snap to.

    Examples:
      >>> import dataclasses, jax.numpy as jnp
      >>> from jaxscm import Additive, Linear, gaussian
      >>> inner = Additive(f=Linear(jnp.array([1.0]), jnp.array(0.0)), noise=gaussian())
      >>> m = dataclasses.replace(Mapped.identity(inner, dtype=jnp.float32),
      ...     support=jnp.array([0.0, 1.0, 2.0]), snapped=jnp.asarray(True))
      >>> m.apply(jnp.array([[0.4], [1.2]]), jnp.array([0.0, 0.5])).tolist()
      [0.0, 2.0]
    """

    mech: Any
    warp_x: Float[Array, " m"]
    warp_y: Float[Array, " m"]
    warped: Bool[Array, ""]
    lo: Float[Array, ""]
    hi: Float[Array, ""]
    clipped: Bool[Array, ""]
    rounded: Bool[Array, ""]
    support: Float[Array, " s"]
    snapped: Bool[Array, ""]

    @classmethod
    def identity(cls, mech: Any, *, dtype: Any, knots: int = 2, size: int = 1) -> Any:
        """`mech` under a map whose every step is off (exactly `mech`)."""
        off = jnp.asarray(False)
        zero = jnp.zeros((), dtype)
        grid = jnp.arange(knots, dtype=dtype)
        return cls(
            mech=mech,
            warp_x=grid,
            warp_y=grid,
            warped=off,
            lo=zero,
            hi=zero,
            clipped=off,
            rounded=off,
            support=jnp.zeros((size,), dtype),
            snapped=off,
        )

    @property
    def noise(self) -> Any:
        """The wrapped mechanism's noise model."""
        return self.mech.noise

    def sample_noise(self, key: jax.Array, n: int) -> Float[Array, " n"]:
        """Draws the wrapped mechanism's noise."""
        return self.mech.sample_noise(key, n)

    def output(self, y: Float[Array, " n"]) -> Float[Array, " n"]:
        """The output map alone."""
        y = jnp.where(self.warped, interp(y, self.warp_x, self.warp_y), y)
        lo, hi = self.lo.astype(y.dtype), self.hi.astype(y.dtype)
        y = jnp.where(self.clipped, jnp.clip(y, lo, hi), y)
        y = jnp.where(self.rounded, jnp.round(y), y)
        return jnp.where(self.snapped, nearest(y, self.support), y)

    def apply(
        self, parents: Float[Array, "n p"], noise: Float[Array, " n"]
    ) -> Float[Array, " n"]:
        """The wrapped mechanism's value through the output map."""
        return self.output(self.mech.apply(parents, noise))


@pytree_dataclass
class PointMass:
    """A mixture of a point mass (gated by the parents) and a numeric mechanism.

    With `u ~ U(0, 1)` and `p = gate(pa)[:, 1]`: `point` where `u < p`, else
    `rest.apply(pa, Q(v))` with `v = (u - p) / (1 - p)` and
    `Q(v) = r[min(floor(v * count), count - 1)]`, `r` rest's sorted empirical
    residuals (`rest.noise.values`; entries past `count` are padding).

    Attributes:
      point: () the value of the point mass.
      gate: a predictor of (n, 2) probabilities, column 1 = "at the point".
      rest: the mechanism of the other rows (its noise an `Empirical`, sorted).
      count: () how many of rest's residuals are real.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxscm import Additive, Empirical, Linear
      >>> gate = Linear(jnp.zeros((1,)), jnp.array(0.0), output="sigmoid")  # p = 0.5
      >>> rest = Additive(f=Linear(jnp.zeros((1,)), jnp.array(10.0)),
      ...                 noise=Empirical(jnp.array([1.0, 2.0])))
      >>> m = PointMass(point=jnp.array(0.0), gate=gate, rest=rest,
      ...               count=jnp.array(2.0))
      >>> m.apply(jnp.zeros((3, 1)), jnp.array([0.2, 0.6, 0.9])).tolist()
      [0.0, 11.0, 12.0]
    """

    point: Float[Array, ""]
    gate: Any
    rest: Any
    count: Float[Array, ""]

    def sample_noise(self, key: jax.Array, n: int) -> Float[Array, " n"]:
        """Draws U(0, 1) noise."""
        return jax.random.uniform(key, (n,))

    def probability(self, parents: Float[Array, "n p"]) -> Float[Array, " n"]:
        """P(at the point | parents)."""
        return self.gate(parents)[:, 1]

    def apply(
        self, parents: Float[Array, "n p"], noise: Float[Array, " n"]
    ) -> Float[Array, " n"]:
        """The mixture draw for uniform noise `noise`."""
        p = self.probability(parents).astype(noise.dtype)
        at = noise < p
        # p == 1 leaves no rest: v is never used there (the row is at the point).
        v = jnp.where(p < 1, (noise - p) / jnp.where(p < 1, 1 - p, 1), 0)
        values = self.rest.noise.values.astype(noise.dtype)
        count = self.count.astype(noise.dtype)
        idx = jnp.clip(jnp.floor(jnp.clip(v, 0, 1) * count), 0, count - 1)
        resid = values[idx.astype(jnp.int32)]
        y = self.rest.apply(parents, resid)
        return jnp.where(at, self.point.astype(noise.dtype), y)
