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
uses there. Mechanisms are first brought to canonical forms that compute the same
values (`jaxscm._canonical`: roots as additive models with a zero predictor, inputs
padded to the widest parent set, trees padded to a common size, categorical
encodings and scalers given one layout, classifiers padded to a common class
count), with one envelope of shapes for the whole ensemble (trees: per position),
so that a kind of mechanism has the same structure at the positions that hold it.

Sampling (`plan`, `plan_sample_noise`, `plan_propagate`). Each kind's groups are
stacked along a position axis once, on the host, and the sampler is one loop over
positions whose body evaluates each kind under a branch taken where the position
holds it. XLA compiles one body per kind (credit-g's 8-DAG ensemble: 60 groups, 14
kinds), and every operation that touches a model array costs compile time.

Noise for canonical column c of member b is drawn with `fold_in(fold_in(key, b), c)`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from jaxscm._canonical import canonical as canonical_form
from jaxscm._canonical import envelope
from jaxscm._marginal import Mapped, PointMass
from jaxscm._mechanisms import Additive, Classifier, Constant, Mechanism, Root
from jaxscm._pytree import concrete, pytree_dataclass, static, to_device
from jaxscm._schema import Column
from jaxscm._scm import SCM


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
    # One envelope for every position, so that a kind of mechanism gets one shape
    # wherever it sits and the sampler stacks it across positions (`plan`); except
    # trees, padded per position: a padded node costs time on every row, and on
    # credit-g's 8-DAG ensemble ensemble-wide tree padding made the 8 x 512 call
    # 320 ms instead of 263 ms (with compile 10.6 s instead of 12.7 s).
    env = envelope(
        [(c, m) for s in scms for c, m in zip(s.columns, s.mechanisms, strict=True)]
    )
    envs = [
        {
            **env,
            "trees": envelope([(s.columns[t], s.mechanisms[t]) for s in scms])["trees"],
        }
        for t in range(d)
    ]

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
        group=to_device(group),
        order=to_device(order),
        parent_pos=to_device(parent_pos),
        parent_mask=to_device(parent_mask),
        adjacency=to_device(adjacency),
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
        return to_device(np.stack([np.asarray(x) for x in xs]))
    return jnp.stack(xs)


def _select(index: jax.Array, options: Sequence[jax.Array]) -> jax.Array:
    out = options[0]
    for g in range(1, len(options)):
        out = jnp.where(index == g, options[g], out)
    return out


# ----------------------------------------------------------------------------
# The sampler. Mechanisms of the same structure (a *kind*: PyTree, array shapes,
# inputs read) recur at many positions; `stack` pads them to one envelope so that
# they do. The sampler stacks each kind's groups along a new position axis and
# loops over positions with one body that evaluates every kind under a
# `lax.cond` on whether the position holds it: XLA compiles one body per kind
# instead of one program piece per (position, group). On credit-g's 8-DAG
# ensemble (60 groups, 14 kinds) that is what compile time scales with: every
# operation touching a model array costs milliseconds of XLA compilation.


@dataclasses.dataclass(frozen=True)
class _Layout:
    """Where each kind sits (static: part of the compiled program's key).

    Attributes:
      pairs: per kind, its (position, group) pairs (at most one per position).
      which: per position, the kind of each of its groups.
      width: per kind, the parent slots it reads.
    """

    pairs: tuple[tuple[tuple[int, int], ...], ...]
    which: tuple[tuple[int, ...], ...]
    width: tuple[int, ...]

    def slots(self, d: int) -> np.ndarray:
        """(kinds, d) each kind's stacked index at each position, -1 where absent."""
        slot = np.full((len(self.pairs), d), -1, np.int32)
        for i, pairs in enumerate(self.pairs):
            for j, (t, _) in enumerate(pairs):
                slot[i, t] = j
        return slot

    def kind_at(self, group: jax.Array) -> jax.Array:
        """(k, d) the kind each member uses at each position."""
        width = max(len(w) for w in self.which)
        table = np.zeros((len(self.which), width), np.int32)
        for t, kinds in enumerate(self.which):
            table[t, : len(kinds)] = kinds
        return jnp.asarray(table)[jnp.arange(len(self.which)), group]


def _layout(ens: Ensemble) -> _Layout:
    kinds: dict[Any, list[tuple[int, int]]] = {}
    which: list[tuple[int, ...]] = []
    for t, gs in enumerate(ens.groups):
        here = []
        for g, mech in enumerate(gs):
            leaves, treedef = jax.tree.flatten(mech)
            sig = (
                treedef,
                tuple((jnp.shape(x), jnp.result_type(x)) for x in leaves),
                ens.n_inputs[t][g],
            )
            here.append(list(kinds).index(sig) if sig in kinds else len(kinds))
            kinds.setdefault(sig, []).append((t, g))
        which.append(tuple(here))
    return _Layout(
        pairs=tuple(tuple(p) for p in kinds.values()),
        which=tuple(which),
        width=tuple(sig[2] for sig in kinds),
    )


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=("kinds", "group", "order", "parent_pos", "parent_mask"),
    meta_fields=("layout",),
)
@dataclasses.dataclass(frozen=True)
class _Plan:
    """What the sampler reads: each kind's groups stacked (leaves (S, k, ...), S
    the positions holding the kind) and the member tables."""

    kinds: tuple[Any, ...]
    group: jax.Array
    order: jax.Array
    parent_pos: jax.Array
    parent_mask: jax.Array
    layout: _Layout


def plan(ens: Ensemble) -> _Plan:
    """The sampler's view of `ens`, built once per concrete ensemble (cached on it;
    the stacking runs on the host, and the cache holds a second copy of the
    mechanism arrays) or inside the caller's trace."""
    cached = ens.__dict__.get("_plan")
    if cached is not None:
        return cached
    layout = _layout(ens)
    kinds = tuple(
        jax.tree.map(_stack_leaves, *[ens.groups[t][g] for t, g in pairs])
        for pairs in layout.pairs
    )
    out = _Plan(kinds, ens.group, ens.order, ens.parent_pos, ens.parent_mask, layout)
    if concrete(*jax.tree.leaves(out)):
        object.__setattr__(ens, "_plan", out)
    return out


def plan_sample_noise(key: jax.Array, p: _Plan, n: int) -> Float[Array, "k n d"]:
    """Every member's noise, (k, n, d) in canonical column order.

    Draws are grouped by what they read, not by mechanism: every position whose
    mechanisms draw U(0, 1) (classifiers, point masses) draws in one vmap, every
    position with same-shaped empirical noise in another, and so on; a member's own
    noise parameters are gathered first and drawn once. Noise for canonical column c
    of member b is `mech.sample_noise(fold_in(fold_in(key, b), c), n)`: random draws
    are elementwise in their keys, so batching them changes nothing.
    """
    k, d = p.order.shape
    slot = p.layout.slots(d)
    kind_at = p.layout.kind_at(p.group)
    # every (member, position) key at once: one PRNG program instead of one per
    # kind of draw (each costs a quarter second of XLA compilation on a 2-core CPU)
    member = jax.vmap(lambda b: jax.random.fold_in(key, b))(jnp.arange(k))
    keys = jax.vmap(jax.vmap(jax.random.fold_in, in_axes=(None, 0)))(member, p.order)
    sources: dict[Any, list[tuple[int, Any]]] = {}  # draw structure -> kinds
    for i, mech in enumerate(p.kinds):
        draw, params = _noise_source(mech)
        leaves, treedef = jax.tree.flatten(params)
        shapes = tuple((jnp.shape(x)[2:], jnp.result_type(x)) for x in leaves)
        sources.setdefault((draw, treedef, shapes), []).append((i, params))
    noise_of = np.zeros(len(p.kinds), np.int32)  # kind -> draw structure
    row_of = np.zeros((len(sources), d), np.int32)  # (structure, position) -> row
    drawn = []  # (k, |ts|, n) per draw structure
    for s, (sig, members) in enumerate(sources.items()):
        ids = [i for i, _ in members]
        noise_of[ids] = s
        params = jax.tree.map(lambda *xs: jnp.concatenate(xs), *[q for _, q in members])
        start = np.cumsum([0] + [len(p.layout.pairs[i]) for i in ids])
        ts = sorted({t for i in ids for t, _ in p.layout.pairs[i]})
        index = np.zeros((len(p.kinds), len(ts)), np.int32)  # into `params`
        for i, off in zip(ids, start, strict=False):
            index[i] = np.where(slot[i, ts] >= 0, off + slot[i, ts], 0)
        at = jnp.asarray(index)[kind_at[:, ts], jnp.arange(len(ts))]  # (k, |ts|)
        own = jax.tree.map(lambda a, at=at: a[at, jnp.arange(k)[:, None]], params)

        draw = functools.partial(sig[0], n=n)
        row_of[s, ts] = sum(x.shape[1] for x in drawn) + np.arange(len(ts))
        drawn.append(jax.vmap(jax.vmap(draw))(own, keys[:, ts]))
    # Member b's column at position t is the row that its kind's draw structure
    # wrote there: one gather takes every member's rows to canonical order (a
    # select per column and a scatter of the (k, d, n) block compiled more).
    row = jnp.asarray(row_of)[jnp.asarray(noise_of)[kind_at], jnp.arange(d)]
    row = jax.vmap(_to_canonical)(row, p.order)  # (k, d): canonical column -> row
    x = jnp.concatenate(drawn, axis=1) if len(drawn) > 1 else drawn[0]
    return jnp.take_along_axis(x, row[:, :, None], axis=1).transpose(0, 2, 1)


def _noise_source(mech: Any) -> tuple[Any, Any]:
    """(draw, params) with `draw(params, key, n) == mech.sample_noise(key, n)`,
    `params` the part of the mechanism the draw reads."""
    while isinstance(mech, Mapped):
        mech = mech.mech
    own = type(mech).sample_noise
    if own is Classifier.sample_noise or own is PointMass.sample_noise:
        return _draw_uniform, ()
    if own is Constant.sample_noise:
        return _draw_zeros, mech.value
    if own is Root.sample_noise or own is Additive.sample_noise:
        return _draw_noise, mech.noise
    return _draw_own, mech


def _draw_uniform(params: Any, key: jax.Array, n: int) -> jax.Array:
    del params
    return jax.random.uniform(key, (n,))


def _draw_zeros(value: jax.Array, key: jax.Array, n: int) -> jax.Array:
    del key
    return jnp.zeros((n,), jnp.result_type(value))


def _draw_noise(noise: Any, key: jax.Array, n: int) -> jax.Array:
    return noise.sample(key, n)


def _draw_own(mech: Any, key: jax.Array, n: int) -> jax.Array:
    return mech.sample_noise(key, n)


def plan_propagate(p: _Plan, noise: Float[Array, "k n d"]) -> Float[Array, "k n d"]:
    """Pushes (k, n, d) canonical-order noise through every member.

    One `lax.scan` over positions. The predicate of each kind's `lax.cond` depends
    on the position only, so it is a branch, not a select: a position runs the kinds
    it holds. Parent rows enter the branches as operands, so XLA materialises them
    once instead of fusing the parent lookup into every tree lookup.
    """
    k, n, d = noise.shape
    dtype = noise.dtype
    width = p.layout.width
    p_all = max(width)
    kind_at = p.layout.kind_at(p.group)
    # Positions as rows: a parent lookup gathers whole rows of n values.
    noise_pos = jax.vmap(lambda z, o: z[:, o].T)(noise, p.order)  # (k, d, n)
    xs = (
        jnp.asarray(p.layout.slots(d).T),
        noise_pos.transpose(1, 0, 2),
        p.parent_pos[:, :, :p_all].transpose(1, 0, 2),
        p.parent_mask[:, :, :p_all].transpose(1, 0, 2),
        kind_at.T,
        jnp.arange(d),
    )

    def body(x: jax.Array, xs: tuple[jax.Array, ...]) -> tuple[jax.Array, None]:
        slots, z, pos, mask, kind, t = xs
        rows = jax.vmap(lambda xb, i, m: jnp.where(m[:, None], xb[i], 0.0))(
            x, pos, mask
        ).astype(dtype)  # (k, p, n)
        outs = []
        for i, mechs in enumerate(p.kinds):

            def run(rows, z, mechs=mechs, j=slots[i], w=width[i]):
                mech = jax.tree.map(
                    lambda a: jax.lax.dynamic_index_in_dim(a, j, keepdims=False),
                    mechs,
                )
                out = jax.vmap(lambda m, r, zb: m.apply(r[:w].T, zb))(mech, rows, z)
                # cast per branch, not after the select: the same values, and the
                # other branch's shape is known without tracing the kind twice
                return out.astype(dtype)

            outs.append(
                jax.lax.cond(
                    slots[i] >= 0, run, lambda rows, z: jnp.zeros_like(z), rows, z
                )
            )
        value = _select(kind[:, None], outs)
        return jax.lax.dynamic_update_index_in_dim(x, value[:, None], t, 1), None

    x, _ = jax.lax.scan(body, jnp.zeros((k, d, n), dtype), xs)
    return jax.vmap(_to_canonical)(x, p.order).transpose(0, 2, 1)


def _to_canonical(x_pos: jax.Array, order: jax.Array) -> jax.Array:
    """Rows in position order (d, n) -> canonical column order: row t goes to
    `order[t]` (a scatter; an argsort of `order` would compile a sort)."""
    return jnp.zeros_like(x_pos).at[order].set(x_pos, unique_indices=True)


def ensemble_sample_noise(
    key: jax.Array, ens: Ensemble, n: int
) -> Float[Array, "k n d"]:
    """Every member's noise, (k, n, d) in canonical column order."""
    return plan_sample_noise(key, plan(ens), n)


def ensemble_propagate(
    ens: Ensemble, noise: Float[Array, "k n d"]
) -> Float[Array, "k n d"]:
    """Pushes (k, n, d) canonical-order noise through every member."""
    return plan_propagate(plan(ens), noise)


def ensemble_sample(key: jax.Array, ens: Ensemble, n: int) -> Float[Array, "k n d"]:
    """(k, n, d) samples: n rows from each member, canonical column order."""
    return ensemble_propagate(ens, ensemble_sample_noise(key, ens, n))


_sample_shape = jax.jit(ensemble_sample, static_argnums=2)
