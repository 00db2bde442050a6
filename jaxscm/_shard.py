"""Sampling sharded over a `jax.sharding.Mesh`: rows, and ensemble members.

Why the sharded run equals the single-device run: JAX's threefry generator is
*partitionable* by default (`jax_threefry_partitionable`, on since JAX 0.5), i.e. the
random bits of element i are a function of the key and i alone, so XLA's SPMD
partitioner can give each device its block of rows and the device draws exactly the
numbers the single-device program draws for those rows: the noise is bitwise equal.
Every later step of `sample` is row-wise (or member-wise), so nothing crosses
devices. Linear, tree, classifier and noise-only nodes then come out bitwise equal
too; an MLP's hidden layer is a matrix product whose blocking (and so its float
summation order) depends on the rows per device, so MLP columns can differ in the
last bit (measured: at most 1.2e-7 in float32), as can anything downstream that
thresholds them. The `rbg` and `unsafe_rbg` generators give no equality guarantee:
with them a sharded run is a valid sample but not the single-device one.

Several hosts: start every process with `jax.distributed.initialize(...)` (JAX's own
multi-host runtime), build the mesh over `jax.devices()` (all processes' devices) and
call `sample_sharded` with the same key in every process. Each process then holds the
rows of its own devices (`local_rows`), e.g. to write its own Parquet part; no
collective is needed. See `benchmarks/multihost_example.py`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, Float

from jaxscm._ensemble import Ensemble
from jaxscm._sample import sample, sampler_input


@functools.lru_cache(maxsize=64)
def _sharded_fn(sharding: NamedSharding, n: int) -> Any:
    # One compiled program per (mesh, layout, n); the model is an argument, so new
    # parameters with the same structure reuse it.
    del n  # part of the cache key only; jit specialises on it via static_argnums
    return jax.jit(sample, static_argnums=2, out_shardings=sharding)


def _axes_size(mesh: Mesh, axes: Sequence[str]) -> int:
    return int(np.prod([mesh.shape[a] for a in axes])) if axes else 1


def sharding_for(
    model: Any,
    mesh: Mesh,
    *,
    row_axes: Sequence[str] | None = None,
    member_axes: Sequence[str] | None = None,
) -> NamedSharding:
    """The output sharding `sample_sharded` uses.

    Args:
      model: an `SCM` (output (n, d)) or `Ensemble` (output (k, n, d)).
      mesh: the device mesh.
      row_axes: mesh axes that split the rows. Default: all mesh axes for an SCM; for
        an ensemble, all axes not used for members.
      member_axes: (ensembles only) mesh axes that split the members. Default: the
        first mesh axis.

    Returns:
      A `NamedSharding` over `mesh`.

    Raises:
      ValueError: naming the axis, for unknown or repeated mesh axes, or member axes
        given for a single SCM.

    Examples:
      >>> import jax, numpy as np
      >>> from jax.sharding import Mesh
      >>> from jaxscm import random_scm
      >>> mesh = Mesh(np.array(jax.devices()[:1]), ("rows",))
      >>> tuple(sharding_for(random_scm(jax.random.key(0), 3), mesh).spec)
      ('rows', None)
    """
    names = tuple(mesh.axis_names)
    if isinstance(model, Ensemble):
        if member_axes is None:
            member_axes = (
                names[:1]
                if row_axes is None
                else tuple(a for a in names if a not in row_axes)
            )
        if row_axes is None:
            row_axes = tuple(a for a in names if a not in member_axes)
    else:
        if member_axes:
            raise ValueError(
                "member_axes applies to an Ensemble; a single SCM has no members"
            )
        member_axes = ()
        row_axes = names if row_axes is None else tuple(row_axes)
    row_axes, member_axes = tuple(row_axes), tuple(member_axes)
    for a in (*row_axes, *member_axes):
        if a not in names:
            raise ValueError(f"mesh axis {a!r} is not in the mesh axes {names}")
    if len(set(row_axes) | set(member_axes)) != len(row_axes) + len(member_axes):
        raise ValueError(
            f"mesh axes used twice: rows {row_axes}, members {member_axes}"
        )
    rows, members = _entry(row_axes), _entry(member_axes)
    if isinstance(model, Ensemble):
        return NamedSharding(mesh, PartitionSpec(members, rows, None))
    return NamedSharding(mesh, PartitionSpec(rows, None))


def sample_sharded(
    key: jax.Array,
    model: Any,
    n: int,
    mesh: Mesh,
    *,
    row_axes: Sequence[str] | None = None,
    member_axes: Sequence[str] | None = None,
) -> Float[Array, "*k n d"]:
    """`jaxscm.sample` with its rows (and ensemble members) split across a mesh.

    The result equals `jaxscm.sample(key, model, n)` for the same threefry key (the
    default generator), up to the last float bit of MLP nodes (see the module
    docstring); each device computes only its own block.

    Args:
      key: a PRNG key (threefry for equality with the single-device run).
      model: an `SCM` or `Ensemble`.
      n: rows (per member); must divide evenly over the row axes.
      mesh: the device mesh (for several hosts: over all processes' devices).
      row_axes, member_axes: see `sharding_for`.

    Returns:
      A sharded array, (n, d) or (k, n, d).

    Raises:
      ValueError: naming the axis, when n or the member count does not divide evenly
        over the mesh axes assigned to it.

    Examples:
      >>> import jax, numpy as np
      >>> from jax.sharding import Mesh
      >>> from jaxscm import random_scm, sample
      >>> mesh = Mesh(np.array(jax.devices()[:1]), ("rows",))
      >>> scm = random_scm(jax.random.key(0), 4)
      >>> x = sample_sharded(jax.random.key(1), scm, 8, mesh)
      >>> want = jax.jit(sample, static_argnums=2)(jax.random.key(1), scm, 8)
      >>> bool((x == want).all())
      True
    """
    sharding = sharding_for(model, mesh, row_axes=row_axes, member_axes=member_axes)
    spec = sharding.spec
    row_spec = spec[1] if isinstance(model, Ensemble) else spec[0]
    rows = _as_tuple(row_spec)
    if n % _axes_size(mesh, rows):
        raise ValueError(
            f"n={n} rows do not split evenly over mesh axes {rows} "
            f"({_axes_size(mesh, rows)} devices); use a multiple of it"
        )
    if isinstance(model, Ensemble):
        members = _as_tuple(spec[0])
        if model.n_members % _axes_size(mesh, members):
            raise ValueError(
                f"{model.n_members} ensemble members do not split evenly over mesh "
                f"axes {members} ({_axes_size(mesh, members)} devices); pass "
                f"member_axes=() to split rows only"
            )
    return _sharded_fn(sharding, n)(key, sampler_input(model), n)


def local_rows(x: jax.Array) -> list[tuple[tuple[slice, ...], np.ndarray]]:
    """This process's blocks of a sharded result, with where they sit in the whole.

    Args:
      x: a (possibly multi-host) sharded array.

    Returns:
      `(index, block)` pairs, one per distinct block on this process's devices;
      `index` is a tuple of slices into the global array (replicas are listed once).

    Examples:
      >>> import jax.numpy as jnp
      >>> [b.shape for _, b in local_rows(jnp.zeros((4, 2)))]
      [(4, 2)]
    """
    seen: set[tuple[tuple[Any, Any, Any], ...]] = set()
    out = []
    for shard in x.addressable_shards:
        ident = tuple((s.start, s.stop, s.step) for s in shard.index)
        if ident in seen:
            continue
        seen.add(ident)
        out.append((shard.index, np.asarray(shard.data)))
    return out


def _entry(axes: tuple[str, ...]) -> Any:
    return None if not axes else axes[0] if len(axes) == 1 else axes


def _as_tuple(entry: Any) -> tuple[str, ...]:
    if entry is None:
        return ()
    return (entry,) if isinstance(entry, str) else tuple(entry)
