"""The structural causal model PyTree."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxscm._mechanisms import Classifier, Constant, Mechanism, Root
from jaxscm._pytree import pytree_dataclass, static
from jaxscm._schema import Column


@pytree_dataclass
class SCM:
    """A structural causal model over one DAG, as an immutable PyTree.

    Nodes are stored in topological order: every parent index of node `i` is smaller
    than `i`, which makes the graph acyclic by construction. The mechanisms are the
    PyTree's leaves (arrays); the columns and the parent tuples are static, so jit
    unrolls the sampling loop over this exact graph.

    Attributes:
      mechanisms: one mechanism per node (`Root`, `Additive`, `Classifier`, `Constant`).
      columns: one `Column` per node, in the same order; names are the node names.
      parents: for each node, the indices of its parents in the order the mechanism
        expects them (DoWhy's `get_ordered_predecessors` order after distillation).

    Raises:
      ValueError: naming the node, if the parent indices, the mechanisms and the
        columns are inconsistent.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxscm import Additive, Column, Linear, Root, gaussian, sample
      >>> scm = SCM(
      ...     mechanisms=(Root(gaussian()),
      ...                 Additive(Linear(jnp.array([2.0]), jnp.array(0.0)),
      ...                          gaussian(0.1))),
      ...     columns=(Column("x"), Column("y")),
      ...     parents=((), (0,)))
      >>> sample(jax.random.key(0), scm, 4).shape
      (4, 2)
    """

    mechanisms: tuple[Mechanism, ...]
    columns: tuple[Column, ...] = static()
    parents: tuple[tuple[int, ...], ...] = static()

    def __post_init__(self) -> None:
        object.__setattr__(self, "mechanisms", tuple(self.mechanisms))
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(
            self, "parents", tuple(tuple(_index(j) for j in p) for p in self.parents)
        )
        d = len(self.columns)
        if len(self.mechanisms) != d or len(self.parents) != d:
            raise ValueError(
                f"SCM needs one mechanism and one parent tuple per column: got "
                f"{len(self.columns)} columns, {len(self.mechanisms)} mechanisms, "
                f"{len(self.parents)} parent tuples"
            )
        seen: set[str] = set()
        for col in self.columns:
            if not isinstance(col, Column):
                raise TypeError(f"SCM.columns must hold Column objects, got {col!r}")
            if col.name in seen:
                raise ValueError(f"duplicate node name {col.name!r}")
            seen.add(col.name)
        for i, (col, pa, mech) in enumerate(
            zip(self.columns, self.parents, self.mechanisms, strict=False)
        ):
            _check_node(i, col, pa, mech, self.columns)

    @property
    def nodes(self) -> tuple[str, ...]:
        """Node names in topological order."""
        return tuple(c.name for c in self.columns)

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.columns)

    def index(self, name: str) -> int:
        """Position of node `name`.

        Raises:
          KeyError: naming the node and listing the known ones.
        """
        for i, c in enumerate(self.columns):
            if c.name == name:
                return i
        raise KeyError(f"no node named {name!r}; nodes are {list(self.nodes)}")

    @property
    def target(self) -> int | None:
        """Index of the target column, or None."""
        for i, c in enumerate(self.columns):
            if c.is_target:
                return i
        return None

    def adjacency(self) -> jax.Array:
        """(d, d) 0/1 matrix with `A[j, i] = 1` for an edge j -> i."""
        a = [[0] * self.n_nodes for _ in range(self.n_nodes)]
        for i, pa in enumerate(self.parents):
            for j in pa:
                a[j][i] = 1
        return jnp.asarray(a, dtype=jnp.int32)


def _index(j: Any) -> int:
    # int(1.9), int("1") and int(True) are all 1: a tampered model file must not
    # silently rewire its graph.
    integral = isinstance(j, (int, np.integer)) or (
        jnp.ndim(j) == 0 and jnp.issubdtype(getattr(j, "dtype", None), jnp.integer)
    )
    if isinstance(j, (bool, np.bool_)) or not integral:
        raise TypeError(f"SCM parent indices must be integers, got {j!r}")
    return int(j)


def _check_node(
    i: int, col: Column, pa: Sequence[int], mech: Any, columns: Sequence[Column]
) -> None:
    where = f"node {col.name!r} (index {i})"
    if len(set(pa)) != len(pa):
        raise ValueError(f"{where}: duplicate parent indices {tuple(pa)}")
    for j in pa:
        if not 0 <= j < i:
            raise ValueError(
                f"{where}: parent index {j} must be in [0, {i}) - nodes are stored in "
                f"topological order, so this edge would make the graph cyclic or "
                f"point outside it"
            )
    if isinstance(mech, (Root, Constant)) and pa:
        raise ValueError(f"{where}: a {type(mech).__name__} mechanism takes no parents")
    if not hasattr(mech, "apply") or not hasattr(mech, "sample_noise"):
        raise TypeError(
            f"{where}: {type(mech).__name__} is not a mechanism "
            f"(needs apply and sample_noise)"
        )
    if isinstance(mech, Classifier) and col.kind != "categorical":
        raise ValueError(f"{where}: a Classifier mechanism needs a categorical column")
    # Abstract evaluation checks the parameter shapes against the parent count once,
    # at construction, so traced code never has to.
    dtype = jnp.float32 if not jax.config.jax_enable_x64 else jnp.float64
    x = jax.ShapeDtypeStruct((2, len(pa)), dtype)
    noise = jax.ShapeDtypeStruct((2,), dtype)
    try:
        # First with the mechanism as an argument of a fixed jitted function, whose
        # trace JAX caches per structure: members of an ensemble (and a member
        # rebuilt with new leaf values) share it. Anything that does not trace that
        # way is checked as before, on the mechanism's concrete values.
        out = _apply_shape.eval_shape(mech, x, noise)
        if isinstance(mech, Classifier):
            probs = _probabilities_shape.eval_shape(mech, x)
    except Exception:  # noqa: BLE001 - any failure: the direct check below decides
        out = probs = None
    try:
        if out is None:
            out = jax.eval_shape(mech.apply, x, noise)
            if isinstance(mech, Classifier):
                probs = jax.eval_shape(mech.probabilities, x)
    except Exception as err:  # shape errors surface as various exception types
        raise ValueError(
            f"{where}: mechanism {type(mech).__name__} does not accept {len(pa)} "
            f"parent column(s): {err}"
        ) from err
    if out.shape != (2,):
        raise ValueError(
            f"{where}: mechanism {type(mech).__name__} returns shape {out.shape} per "
            f"2 rows; a node must return one value per row"
        )
    if isinstance(mech, Classifier) and probs.shape[-1] != col.n_categories:
        raise ValueError(
            f"{where}: the classifier yields {probs.shape[-1]} class probabilities but "
            f"the column has {col.n_categories} categories {col.categories}"
        )


def _apply_of(mech: Any, parents: jax.Array, noise: jax.Array) -> jax.Array:
    return mech.apply(parents, noise)


def _probabilities_of(mech: Any, parents: jax.Array) -> jax.Array:
    return mech.probabilities(parents)


_apply_shape = jax.jit(_apply_of)
_probabilities_shape = jax.jit(_probabilities_of)
