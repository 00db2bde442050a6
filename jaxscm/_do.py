"""Hard interventions `do(model, {node: value})` on an `SCM` or an `Ensemble`.

An intervened node is held at its value and reads none of its parents; every other
node keeps its mechanism and its noise. Noise is drawn per column from the key
(`fold_in` by column), so for the same key the intervened model's rows agree with
the observational ones on every column that does not descend from an intervened
node, bit for bit.

For an `Ensemble` the graph is data, and so is the intervention: at every position
where some member runs an intervened node, that member is switched to a `Constant`
group (one per position, holding a value per member: the first `do` at a position
adds it, later ones reuse it) and its parent slots are masked. So `do` with other
values (or other nodes at the same positions) keeps the structure, and the compiled
sampler of the first intervened model serves them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxscm._ensemble import Ensemble
from jaxscm._mechanisms import Constant
from jaxscm._pytree import to_device
from jaxscm._schema import Column
from jaxscm._scm import SCM

Model = TypeVar("Model", SCM, Ensemble)


def do(model: Model, interventions: Mapping[str, float | int | str]) -> Model:
    """Hard intervention: fixes nodes to values and cuts their incoming edges.

    Args:
      model: an `SCM` or an `Ensemble` (every member is intervened on).
      interventions: node name -> value. A categorical node takes a category label
        (a string) or its integer code; a numeric node a finite number; an integer
        node a whole number.

    Returns:
      A new model of the same type. For an `SCM` the intervened nodes become
      `Constant` with no parents. For an `Ensemble`, the intervened nodes use a
      `Constant` group in every member, with no parents and no incoming edges in
      `adjacency` (module docstring); the fit record (`info`) is not carried, as the
      intervened model is not what was fitted.

    Raises:
      KeyError: an unknown node name (listing the nodes).
      ValueError: a value the node cannot take (an unknown category, a code out of
        range, a non-finite number, a fraction for an integer node), naming the node.

    Examples:
      >>> import jax
      >>> from jaxscm import random_scm, sample, stack
      >>> scm = random_scm(jax.random.key(0), 3)
      >>> x = sample(jax.random.key(1), do(scm, {"x1": 2.0}), 4)
      >>> x[:, 1].tolist()
      [2.0, 2.0, 2.0, 2.0]
      >>> ens = stack([scm, random_scm(jax.random.key(2), 3)])
      >>> sample(jax.random.key(1), do(ens, {"x0": -1.0}), 2)[..., 0].tolist()
      [[-1.0, -1.0], [-1.0, -1.0]]
    """
    if isinstance(model, Ensemble):
        return _do_ensemble(model, interventions)
    if not isinstance(model, SCM):
        raise TypeError(f"do takes an SCM or an Ensemble, got {type(model).__name__}")
    mechanisms = list(model.mechanisms)
    parents = list(model.parents)
    dtype = _dtype_of(model)
    for name, value in interventions.items():
        i = model.index(name)
        v = node_value(model.columns[i], value)
        mechanisms[i] = Constant(value=jnp.asarray(v, dtype=dtype))
        parents[i] = ()
    return SCM(
        mechanisms=tuple(mechanisms), columns=model.columns, parents=tuple(parents)
    )


def node_value(col: Column, value: Any) -> float:
    """The value a node is held at, checked against its column.

    Args:
      col: the node's column.
      value: a category label (str) or code for a categorical column, a number
        otherwise.

    Returns:
      The value as a float (a category's code for a categorical column).

    Raises:
      ValueError: naming the node: an unknown label, a code out of range, a
        non-number, a non-finite number, or a fraction for an integer column.

    Examples:
      >>> node_value(Column("c", "categorical", ("a", "b")), "b")
      1.0
      >>> node_value(Column("x"), 2)
      2.0
    """
    if col.kind == "categorical":
        if isinstance(value, str):
            if value not in col.categories:
                raise ValueError(
                    f"node {col.name!r}: unknown category {value!r}; categories are "
                    f"{list(col.categories)}"
                )
            return float(col.categories.index(value))
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not (
            isinstance(value, bool)
        )
        if not (ok and float(value).is_integer() and 0 <= value < col.n_categories):
            raise ValueError(
                f"node {col.name!r}: a categorical value must be a label in "
                f"{list(col.categories)} or a code in [0, {col.n_categories})"
            )
        return float(value)
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"node {col.name!r} is {col.kind}: give a number, got {value!r}"
        ) from None
    if not np.isfinite(v):
        raise ValueError(f"node {col.name!r}: the value must be finite, got {value!r}")
    if col.kind == "integer" and not v.is_integer():
        raise ValueError(
            f"node {col.name!r} holds whole numbers: give one, got {value!r}"
        )
    return v


def _do_ensemble(ens: Ensemble, interventions: Mapping[str, Any]) -> Ensemble:
    index = {c.name: i for i, c in enumerate(ens.columns)}
    held: dict[int, float] = {}
    for name, value in interventions.items():
        if name not in index:
            raise KeyError(f"no node named {name!r}; nodes are {list(ens.nodes)}")
        held[index[name]] = node_value(ens.columns[index[name]], value)
    if not held:
        return ens
    dtype = _dtype_of(ens)
    order = np.asarray(ens.order)
    group = np.array(ens.group)
    mask = np.array(ens.parent_mask)
    adjacency = np.array(ens.adjacency)
    groups = [list(g) for g in ens.groups]
    n_inputs = [list(m) for m in ens.n_inputs]
    cols = np.array(sorted(held))
    values = np.zeros(len(ens.columns))
    values[cols] = [held[c] for c in cols]
    for t in range(len(ens.columns)):
        hit = np.isin(order[:, t], cols)
        if not hit.any():
            continue
        j = _constant_group(groups[t], ens.n_members, dtype)
        if j == len(groups[t]):
            groups[t].append(Constant(value=jnp.zeros(ens.n_members, dtype)))
            n_inputs[t].append(0)
        old = groups[t][j].value
        new = jnp.where(jnp.asarray(hit), jnp.asarray(values[order[:, t]], dtype), old)
        groups[t][j] = Constant(value=new)
        group[hit, t] = j
        mask[hit, t, :] = False
    adjacency[:, :, cols] = 0
    return Ensemble(
        groups=tuple(tuple(g) for g in groups),
        group=to_device(np.asarray(group, ens.group.dtype)),
        order=ens.order,
        parent_pos=ens.parent_pos,
        parent_mask=to_device(mask),
        adjacency=to_device(np.asarray(adjacency, ens.adjacency.dtype)),
        columns=ens.columns,
        n_inputs=tuple(tuple(m) for m in n_inputs),
    )


def _constant_group(groups: list[Any], k: int, dtype: Any) -> int:
    """Index of the position's `Constant` group with a (k,) value, else len(groups)."""
    for j, g in enumerate(groups):
        if (
            type(g) is Constant
            and jnp.shape(g.value) == (k,)
            and jnp.result_type(g.value) == dtype
        ):
            return j
    return len(groups)


def _dtype_of(model: SCM | Ensemble) -> jnp.dtype:
    leaves = [
        x
        for x in jax.tree.leaves(model)
        if jnp.issubdtype(jnp.result_type(x), jnp.floating)
    ]
    return jnp.result_type(leaves[0]) if leaves else jnp.dtype(jnp.float32)
