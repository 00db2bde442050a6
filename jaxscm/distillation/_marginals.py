"""Exact conversions of the marginal fixes' DoWhy mechanisms to `jaxscm._marginal`.

* `PostNonlinearModel(f, n, QuantileNormal)` -> `Mapped(Additive(f, n), warp)`, the
  warp interpolating between the same knots (`Q^-1`: normal space -> data);
* `PointMassFCM(point, gate, rest)` -> `PointMass(point, gate, rest)`, the gate's
  probabilities in the column order (not at, at) and rest's residuals sorted;
* `OutputMapFCM(inner, lo, hi, round, support)` -> `Mapped(inner)` with those steps
  on; an inner `Mapped` that only warps is merged into it (same order of steps).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxscm._features import Select
from jaxscm._marginal import Mapped, PointMass
from jaxscm._mechanisms import Additive
from jaxscm._noise import Empirical


def register(mechanism: Any, predictor: Any, numeric_node: Any) -> None:
    """Adds the conversions to `distill`'s mechanism registry.

    Args:
      mechanism: the `_mechanism` singledispatch function.
      predictor: `_predictor_or_surrogate`.
      numeric_node: the check that the column is not categorical.
    """
    from jaxscm.fitting._marginal_fcms import OutputMapFCM, PointMassFCM

    @mechanism.register(PointMassFCM)
    def _(mech: PointMassFCM, ctx: Any) -> PointMass:
        numeric_node(mech, ctx)
        classes = [int(c) for c in mech.gate.classes]
        if sorted(classes) != [0, 1]:
            raise ValueError(
                f"{ctx.where}: the point-mass gate predicts classes {classes}, "
                f"expected [0, 1]; refit the node"
            )
        gate = predictor(mech.gate, ctx, classifier=True)
        if classes != [0, 1]:
            gate = _then(gate, Select(index=(classes.index(0), classes.index(1))))
        rest = mechanism(mech.rest, ctx)
        residuals = np.sort(mech.residuals)
        return PointMass(
            point=ctx.array(np.float64(mech.point)),
            gate=gate,
            rest=_with_noise(rest, Empirical(values=ctx.array(residuals))),
            count=ctx.array(np.float64(residuals.shape[0])),
        )

    @mechanism.register(OutputMapFCM)
    def _(mech: OutputMapFCM, ctx: Any) -> Mapped:
        numeric_node(mech, ctx)
        inner = mechanism(mech.inner, ctx)
        base = (
            inner
            if _warp_only(inner)
            else Mapped.identity(inner, dtype=ctx.dtype, knots=2, size=1)
        )
        on = jnp.asarray(True)
        fields: dict[str, Any] = {}
        if mech.lo is not None or mech.hi is not None:
            lo = -np.inf if mech.lo is None else mech.lo
            hi = np.inf if mech.hi is None else mech.hi
            # One-sided bounds become the other side's finite extreme of the dtype.
            big = float(jnp.finfo(ctx.dtype).max)
            fields.update(
                lo=ctx.array(np.float64(max(lo, -big))),
                hi=ctx.array(np.float64(min(hi, big))),
                clipped=on,
            )
        if mech.round:
            fields.update(rounded=on)
        if mech.support is not None:
            fields.update(support=ctx.array(mech.support), snapped=on)
        return dataclasses.replace(base, **fields)


def register_transform(mech: Any, ctx: Any, f: Any, noise: Any) -> Mapped | None:
    """`Mapped(Additive(f, noise), warp)` for a `PostNonlinearModel` whose function
    is a `QuantileNormal`, else None."""
    from jaxscm.fitting._marginal_fcms import QuantileNormal

    g = mech.invertible_function
    if not isinstance(g, QuantileNormal):
        return None
    base = Mapped.identity(
        Additive(f=f, noise=noise), dtype=ctx.dtype, knots=len(g.z_knots)
    )
    return dataclasses.replace(
        base,
        warp_x=ctx.array(g.z_knots),
        warp_y=ctx.array(g.x_knots),
        warped=jnp.asarray(True),
    )


def _warp_only(m: Any) -> bool:
    return isinstance(m, Mapped) and not any(
        bool(getattr(m, s)) for s in ("clipped", "rounded", "snapped")
    )


def _with_noise(rest: Any, noise: Empirical) -> Any:
    if isinstance(rest, Mapped):
        return dataclasses.replace(rest, mech=_with_noise(rest.mech, noise))
    if not isinstance(rest, Additive) or not isinstance(rest.noise, Empirical):
        raise NotImplementedError(
            f"a point mass needs an additive rest with empirical noise, got "
            f"{type(rest).__name__}"
        )
    return dataclasses.replace(rest, noise=noise)


def _then(f: Any, step: Any) -> Any:
    from jaxscm._features import Pipeline

    steps = f.steps if isinstance(f, Pipeline) else (f,)
    return Pipeline(steps=(*steps, step))
