"""Sampling and noise propagation for an `SCM` or an `Ensemble` (`do` is in `_do`).

The public `sample`, `sample_noise` and `propagate` call module-level `jax.jit`-ed
functions. Called plainly, they compile once per (model structure, n, dtype) and
reuse that program: eager op-by-op dispatch of a fitted ensemble (about 1,300 XLA
operations) took seconds per call. Inside a caller's own `jax.jit` or `vmap` the
inner jit is traced inline like any other function, so composing them costs nothing.
The model's arrays are arguments, not constants: new parameters, `do` values or
another fit with the same structure reuse the compiled program.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from jaxscm._ensemble import Ensemble, plan, plan_propagate, plan_sample_noise
from jaxscm._scm import SCM


def sample_noise(key: jax.Array, scm: SCM | Ensemble, n: int) -> Float[Array, "*k n d"]:
    """Draws every node's exogenous noise.

    Node `i` draws with `jax.random.fold_in(key, i)`, so a node's noise does not depend
    on the nodes after it: appending a sink leaves the earlier columns unchanged.

    Args:
      key: a PRNG key (any implementation: threefry, rbg, unsafe_rbg).
      scm: the model.
      n: number of rows (static under jit).

    Returns:
      (n, d) noise, column `i` for node `i`; for an `Ensemble`, (k, n, d) in its
      canonical column order.

    Examples:
      >>> import jax
      >>> from jaxscm import random_scm
      >>> scm = random_scm(jax.random.key(0), 4)
      >>> sample_noise(jax.random.key(1), scm, 3).shape
      (3, 4)
    """
    return _sample_noise_jit(key, sampler_input(scm), n)


def sampler_input(scm: Any) -> Any:
    """What the compiled samplers take: an SCM as it is, an ensemble as its sampler
    plan (stacked on the host once per ensemble, so the compiled program does not
    stack the groups itself). A jitted function of one's own that samples should
    take this instead of the ensemble: `sample` accepts either, and traced with the
    ensemble the program restacks the plan on every call (a larger program to
    compile, and a copy of every mechanism array per call)."""
    return plan(scm) if isinstance(scm, Ensemble) else scm


def _sample_noise(key: jax.Array, scm: Any, n: int) -> jax.Array:
    scm = sampler_input(scm)
    if not isinstance(scm, SCM):
        return plan_sample_noise(key, scm, n)
    cols = [
        mech.sample_noise(jax.random.fold_in(key, i), n)
        for i, mech in enumerate(scm.mechanisms)
    ]
    return jnp.stack(cols, axis=1)


def propagate(
    scm: SCM | Ensemble, noise: Float[Array, "*k n d"]
) -> Float[Array, "*k n d"]:
    """Pushes given noise through the mechanisms in topological order.

    Args:
      scm: the model.
      noise: (n, d) noise, as `sample_noise` returns it (classifier nodes take U(0, 1));
        (k, n, d) for an `Ensemble`.

    Returns:
      Node values, shaped like `noise`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxscm import random_scm
      >>> scm = random_scm(jax.random.key(0), 3)
      >>> key = jax.random.key(1)
      >>> bool(jnp.array_equal(propagate(scm, sample_noise(key, scm, 5)),
      ...                      sample(key, scm, 5)))
      True
    """
    return _propagate_jit(sampler_input(scm), noise)


def _propagate(scm: Any, noise: jax.Array) -> jax.Array:
    scm = sampler_input(scm)
    if not isinstance(scm, SCM):
        return plan_propagate(scm, noise)
    n = noise.shape[0]
    cols: list[jax.Array] = []
    for i, (mech, pa) in enumerate(zip(scm.mechanisms, scm.parents, strict=True)):
        if pa:
            x_pa = jnp.stack([cols[j] for j in pa], axis=1)
        else:
            x_pa = jnp.zeros((n, 0), noise.dtype)
        cols.append(mech.apply(x_pa, noise[:, i]))
    return jnp.stack(cols, axis=1)


def sample(key: jax.Array, scm: SCM | Ensemble, n: int) -> Float[Array, "*k n d"]:
    """Draws `n` rows from the model (from each member of an ensemble).

    Pure; compiled once per model structure, `n` and dtype, and reused by later calls
    (a plain call is as fast as a jitted one). Inside your own `jax.jit`, `n` must be
    static (`jax.jit(f, static_argnums=...)`). To batch over keys use
    `jax.vmap(sample, in_axes=(0, None, None))`; over models with the same structure
    and stacked leaves, `in_axes=(0, 0, None)`.

    Args:
      key: a PRNG key.
      scm: the model.
      n: number of rows.

    Returns:
      (n, d) samples, columns in node (topological) order; categorical columns hold
      integer codes as floats. For an `Ensemble` of k members, (k, n, d) with columns
      in `ensemble.columns` order.

    Examples:
      >>> import jax
      >>> from jaxscm import random_scm
      >>> scm = random_scm(jax.random.key(0), 5)
      >>> sample(jax.random.key(1), scm, 100).shape
      (100, 5)
    """
    return _sample_jit(key, sampler_input(scm), n)


def _sample(key: jax.Array, scm: Any, n: int) -> jax.Array:
    return _propagate(scm, _sample_noise(key, scm, n))


# One compiled program per (structure, n, dtypes), shared by every caller; under an
# outer jit or vmap they trace inline.
_sample_jit = jax.jit(_sample, static_argnums=2)
_sample_noise_jit = jax.jit(_sample_noise, static_argnums=2)
_propagate_jit = jax.jit(_propagate)
