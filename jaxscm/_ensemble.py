"""Ensembles of SCMs over different DAGs, as structure-as-data.

CausalMixFT samples from many plausible DAGs of the same table. `stack` turns k
single-DAG `SCM`s over the same columns into one `Ensemble` whose graph is data, so
one compiled function samples all members with `vmap` and picking other members or
drawing fresh noise never recompiles.

Layout. Member b runs its nodes in its own topological order; `order[b, t]` is the
canonical column at its position t, `parent_pos[b, t]` the positions of that node's
parents (padded, with `parent_mask`). At every position the members' mechanisms are
grouped by structure (mechanism classes, static fields, array shapes); each group is
stored once with a leading member axis, and `group[b, t]` says which group member b
uses there. A position evaluates each of its (few) groups for every member and selects
per member, so the cost is d steps of at most G group evaluations, with no iteration
to a fixed point. To keep G small, mechanisms are first brought to canonical forms
that compute the same values (`jaxscm._canonical`: roots as additive models with a
zero predictor, inputs padded to the widest parent set, trees padded to a common
size, categorical encodings and scalers given one layout, classifiers padded to a
common class count).

Noise for canonical column c of member b is drawn with `fold_in(fold_in(key, b), c)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from jaxscm._canonical import canonical as canonical_form
from jaxscm._canonical import envelope
from jaxscm._mechanisms import Mechanism
from jaxscm._pytree import pytree_dataclass, static
from jaxscm._schema import Column
from jaxscm._scm import SCM
from jaxscm._tree import LeafWords


@pytree_dataclass
class Ensemble:
    """k SCMs over the same columns with different DAGs, stacked as data.

    Build one with `stack`; sample with `jaxscm.sample(key, ensemble, n)`, which
    returns (k, n, d) in `ensemble.columns` order.

    Attributes:
      groups: per position t, the stacked mechanism groups (leading axis k).
      group: (k, d) the group each member uses at each position.
      order: (k, d) canonical column index at each position.
      parent_pos: (k, d, p_max) positions of the parents, padded.
      parent_mask: (k, d, p_max) which parent slots are real.
      adjacency: (k, d, d) canonical adjacency, `A[b, i, j] = 1` for i -> j.
      columns: the canonical columns.
      n_inputs: per position and group, how many parent slots the group reads.
      info: the fit record of an ensemble made by `jaxscm.fit_scm` (a
        `jaxscm.FitInfo`: schema, edge probabilities, graphs, timings), else None.
        It rides along outside the structure (`static(structural=False)`): fits
        and reloads with the same structure share one compiled sampler and combine
        under `jax.tree.map`. `jaxscm.save` leaves it out; `jaxscm.save_fit` writes
        it as fit.json.
    """

    groups: tuple[tuple[Mechanism, ...], ...]
    group: Int[Array, "k d"]
    order: Int[Array, "k d"]
    parent_pos: Int[Array, "k d p"]
    parent_mask: Bool[Array, "k d p"]
    adjacency: Int[Array, "k d d"]
    columns: tuple[Column, ...] = static()
    n_inputs: tuple[tuple[int, ...], ...] = static()
    info: Any = static(default=None, saved=False, structural=False)

    _batched_fields = ("groups",)  # for `load`: these leaves carry a member axis

    def __post_init__(self) -> None:
        k, d = jnp.shape(self.group)
        if d != len(self.columns) or len(self.groups) != d or len(self.n_inputs) != d:
            raise ValueError(
                f"Ensemble: {len(self.columns)} columns but group table "
                f"{jnp.shape(self.group)}, "
                f"{len(self.groups)} positions"
            )
        order = np.asarray(self.order)
        if order.shape != (k, d) or not (np.sort(order, axis=1) == np.arange(d)).all():
            raise ValueError(
                "Ensemble.order must hold a permutation of the columns per member"
            )
        ppos, pmask = np.asarray(self.parent_pos), np.asarray(self.parent_mask)
        if ppos.shape[:2] != (k, d) or pmask.shape != ppos.shape:
            raise ValueError("Ensemble.parent_pos/parent_mask have inconsistent shapes")
        position = np.arange(d)[None, :, None]
        bad = pmask & ((ppos < 0) | (ppos >= position))
        if bad.any():
            b, t, _ = np.argwhere(bad)[0]
            name = self.columns[int(order[b, t])].name
            raise ValueError(
                f"Ensemble member {b}, column {name!r}: a parent does not precede it "
                f"in the member's order, so the graph would be cyclic"
            )
        group = np.asarray(self.group)
        for t in range(d):
            if len(self.n_inputs[t]) != len(self.groups[t]):
                raise ValueError(
                    f"Ensemble position {t}: n_inputs does not match the groups"
                )
            if group[:, t].min() < 0 or group[:, t].max() >= len(self.groups[t]):
                raise ValueError(f"Ensemble position {t}: group index out of range")
            for g in self.groups[t]:
                if any(jnp.shape(x)[:1] != (k,) for x in jax.tree.leaves(g)):
                    raise ValueError(
                        f"Ensemble position {t}: a group lacks the leading member "
                        f"axis {k}"
                    )
        try:
            # Traced through a fixed jitted function, whose trace JAX caches per
            # structure: an ensemble rebuilt with other leaf values (a reload, the
            # calibrated members of a fit, a refit of the same shape) is checked
            # without tracing the whole sampler again.
            _sample_shape.eval_shape(jax.random.key(0), self, 2)
        except Exception as err:  # any shape inconsistency inside a group
            raise ValueError(f"Ensemble mechanisms are inconsistent: {err}") from err

    def with_info(self, info: Any) -> Ensemble:
        """The same ensemble carrying another fit record (no re-validation).

        Args:
          info: a `jaxscm.FitInfo`, or None.

        Returns:
          A new `Ensemble` sharing this one's arrays.
        """
        out = object.__new__(type(self))
        out.__dict__.update(self.__dict__)
        object.__setattr__(out, "info", info)
        return out

    @property
    def n_members(self) -> int:
        """Number of member SCMs k."""
        return int(self.group.shape[0])

    @property
    def nodes(self) -> tuple[str, ...]:
        """Column names in canonical order."""
        return tuple(c.name for c in self.columns)

    @property
    def n_nodes(self) -> int:
        """Number of columns d."""
        return len(self.columns)

    @property
    def target(self) -> int | None:
        """Canonical index of the target column, or None."""
        for i, c in enumerate(self.columns):
            if c.is_target:
                return i
        return None


def stack(scms: Sequence[SCM], *, columns: Sequence[Column] | None = None) -> Ensemble:
    """Stacks SCMs over the same columns (and different DAGs) into an `Ensemble`.

    Args:
      scms: k >= 1 models whose columns are the same set (same names, kinds,
        categories and target flag), in any topological orders.
      columns: the canonical column order of the samples; defaults to the first
        model's node order. Pass the table's own column order to get samples laid out
        like the table.

    Returns:
      The ensemble.

    Raises:
      ValueError: naming the member and column, when the models' columns differ.

    Examples:
      >>> import jax
      >>> from jaxscm import random_scm, sample
      >>> a = random_scm(jax.random.key(0), 4)
      >>> b = random_scm(jax.random.key(1), 4)
      >>> sample(jax.random.key(2), stack([a, b]), 8).shape
      (2, 8, 4)
    """
    scms = list(scms)
    if not scms:
        raise ValueError("stack needs at least one SCM")
    canon = tuple(columns) if columns is not None else scms[0].columns
    index = {c.name: i for i, c in enumerate(canon)}
    if len(index) != len(canon):
        raise ValueError("duplicate names in `columns`")
    for b, scm in enumerate(scms):
        if set(scm.nodes) != set(index):
            missing = sorted(set(index) - set(scm.nodes))
            extra = sorted(set(scm.nodes) - set(index))
            raise ValueError(
                f"member {b} has different columns: missing {missing}, "
                f"unexpected {extra}"
            )
        for col in scm.columns:
            if col != canon[index[col.name]]:
                raise ValueError(
                    f"member {b}, column {col.name!r}: {col} differs from the "
                    f"canonical {canon[index[col.name]]}"
                )
    k, d = len(scms), len(canon)
    p_max = max((len(pa) for scm in scms for pa in scm.parents), default=0)
    # Shapes are made common per position: only mechanisms there share groups.
    envs = [envelope([(s.columns[t], s.mechanisms[t]) for s in scms]) for t in range(d)]

    order = np.zeros((k, d), np.int32)
    parent_pos = np.zeros((k, d, max(p_max, 1)), np.int32)
    parent_mask = np.zeros((k, d, max(p_max, 1)), bool)
    adjacency = np.zeros((k, d, d), np.int32)
    canonical: list[list[tuple[Any, int]]] = []
    for b, scm in enumerate(scms):
        row = []
        members = zip(scm.columns, scm.parents, scm.mechanisms, strict=True)
        for t, (col, pa, mech) in enumerate(members):
            order[b, t] = index[col.name]
            parent_pos[b, t, : len(pa)] = pa
            parent_mask[b, t, : len(pa)] = True
            for j in pa:
                adjacency[b, index[scm.columns[j].name], index[col.name]] = 1
            row.append(canonical_form(mech, len(pa), p_max, envs[t], col.n_categories))
        canonical.append(row)

    groups: list[tuple[Any, ...]] = []
    group = np.zeros((k, d), np.int32)
    n_inputs: list[tuple[int, ...]] = []
    for t in range(d):
        keys: list[Any] = []
        members: list[list[int]] = []
        for b in range(k):
            mech, p = canonical[b][t]
            leaves, treedef = jax.tree.flatten(mech)
            key = (
                treedef,
                tuple((jnp.shape(x), jnp.result_type(x)) for x in leaves),
                p,
            )
            if key not in keys:
                keys.append(key)
                members.append([])
            g = keys.index(key)
            members[g].append(b)
            group[b, t] = g
        stacked = []
        for g, bs in enumerate(members):
            rows = [
                canonical[b][t][0] if group[b, t] == g else canonical[bs[0]][t][0]
                for b in range(k)
            ]
            stacked.append(jax.tree.map(_stack_leaves, *rows))
        groups.append(tuple(stacked))
        n_inputs.append(tuple(key[2] for key in keys))
    return Ensemble(
        groups=tuple(groups),
        group=jnp.asarray(group),
        order=jnp.asarray(order),
        parent_pos=jnp.asarray(parent_pos),
        parent_mask=jnp.asarray(parent_mask),
        adjacency=jnp.asarray(adjacency),
        columns=canon,
        n_inputs=tuple(n_inputs),
    )


def _stack_leaves(*xs: Any) -> jax.Array:
    """`jnp.stack(xs)`, done on the host for concrete arrays of one dtype (the same
    values without compiling a concatenation per shape: hundreds per ensemble)."""
    concrete = all(
        isinstance(x, (np.ndarray, jax.Array))
        and not isinstance(x, jax.core.Tracer)
        and not getattr(x, "weak_type", False)
        for x in xs
    )
    if concrete and len({x.dtype for x in xs}) == 1:
        return jnp.asarray(np.stack([np.asarray(x) for x in xs]))
    return jnp.stack(xs)


def _select(index: jax.Array, options: Sequence[jax.Array]) -> jax.Array:
    out = options[0]
    for g in range(1, len(options)):
        out = jnp.where(index == g, options[g], out)
    return out


def _member_noise(ens: Ensemble, key: jax.Array, b: jax.Array, n: int) -> jax.Array:
    """Noise of one member (its slice of the ensemble), in canonical column order."""
    key = jax.random.fold_in(key, b)
    d = len(ens.columns)
    # Positions whose groups have the same structure draw together under one vmap,
    # so the PRNG runs once per structure instead of once per position (the same
    # values: random draws are elementwise in their keys).
    same: dict[Any, list[int]] = {}
    for t in range(d):
        leaves, treedef = jax.tree.flatten(ens.groups[t])
        sig = (treedef, tuple((jnp.shape(x), jnp.result_type(x)) for x in leaves))
        same.setdefault(sig, []).append(t)
    cols: list[jax.Array | None] = [None] * d
    for ts in same.values():
        groups = jax.tree.map(lambda *xs: jnp.stack(xs), *[ens.groups[t] for t in ts])
        pos = jnp.asarray(ts)

        def draw(gs, column):
            k = jax.random.fold_in(key, column)
            return [g.sample_noise(k, n) for g in gs]

        drawn = _select(ens.group[pos][:, None], jax.vmap(draw)(groups, ens.order[pos]))
        for i, t in enumerate(ts):
            cols[t] = drawn[i]
    x_pos = jnp.stack(cols, axis=1)
    return x_pos[:, jnp.argsort(ens.order)]


def _member_propagate(ens: Ensemble, noise: jax.Array) -> jax.Array:
    """Values of one member from its canonical-order noise (n, d)."""
    n, d = noise.shape
    noise_pos = noise[:, ens.order].T
    # Positions as rows (d, n): a parent lookup gathers whole rows, and writing a
    # position's values updates one contiguous row.
    x = jnp.zeros((d, n), noise.dtype)
    for t in range(d):
        p_all = max(ens.n_inputs[t])
        rows = _parent_rows(ens, x, t, p_all, _word_trees(ens.groups[t]))
        outs = []
        for g, mech in enumerate(ens.groups[t]):
            pa = rows[: ens.n_inputs[t][g]].T
            outs.append(mech.apply(pa.astype(noise.dtype), noise_pos[t]))
        x = x.at[t].set(_select(ens.group[t], outs))
    return x[jnp.argsort(ens.order)].T


def _parent_rows(
    ens: Ensemble, x: jax.Array, t: int, p: int, materialize: bool
) -> jax.Array:
    """(p, n) values of position t's parent slots (0 in unused slots).

    With `materialize`, the rows are copied one by one in a loop. A gather of the
    rows would otherwise be fused into the consumer's own gather (trees reading
    their split features by leaf words), and XLA then redoes the parent lookup for
    every (row, tree, node). On the throughput benchmark's HGB-10 ensemble (8 x 512
    rows, tree positions only) that took 0.19-0.43 s against 0.13 s with the copy,
    same values (2026-12-03, 2-core CPU).
    """
    if not p:
        return jnp.zeros((0, x.shape[1]), x.dtype)
    if not materialize:
        return jnp.where(ens.parent_mask[t, :p, None], x[ens.parent_pos[t, :p]], 0.0)

    def copy(j: jax.Array, buf: jax.Array) -> jax.Array:
        row = jax.lax.dynamic_index_in_dim(x, ens.parent_pos[t, j], keepdims=False)
        row = jnp.where(ens.parent_mask[t, j], row, 0.0)
        return jax.lax.dynamic_update_index_in_dim(buf, row, j, 0)

    return jax.lax.fori_loop(0, p, copy, jnp.zeros((p, x.shape[1]), x.dtype))


def _word_trees(groups: Sequence[Any]) -> bool:
    """Whether any mechanism in `groups` evaluates trees by their leaf words."""
    if jax.default_backend() != "cpu":
        return False
    leaves = jax.tree.leaves(groups, is_leaf=lambda a: isinstance(a, LeafWords))
    return any(isinstance(a, LeafWords) for a in leaves)


def ensemble_sample_noise(
    key: jax.Array, ens: Ensemble, n: int
) -> Float[Array, "k n d"]:
    """Every member's noise, (k, n, d) in canonical column order."""
    members = jnp.arange(ens.n_members)
    return jax.vmap(lambda e, b: _member_noise(e, key, b, n))(ens, members)


def ensemble_propagate(
    ens: Ensemble, noise: Float[Array, "k n d"]
) -> Float[Array, "k n d"]:
    """Pushes (k, n, d) canonical-order noise through every member."""
    return jax.vmap(_member_propagate)(ens, noise)


def ensemble_sample(key: jax.Array, ens: Ensemble, n: int) -> Float[Array, "k n d"]:
    """(k, n, d) samples: n rows from each member, canonical column order."""
    return ensemble_propagate(ens, ensemble_sample_noise(key, ens, n))


_sample_shape = jax.jit(ensemble_sample, static_argnums=2)
