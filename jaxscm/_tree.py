"""Tree ensembles held as padded arrays and evaluated by a fixed-depth gather loop.

Each tree is a flat node table. Node 0 is the root. An internal node sends a row to
`left` when `x[feature] <= threshold` and to `right` otherwise; a NaN goes where
`missing_left` says (HistGradientBoosting semantics; sklearn's exact trees never see
NaN). A leaf points to itself in both `left` and `right`, so running the loop for
`depth` steps, the depth of the deepest tree, lands every row on its leaf whatever
the depth of its own tree. Trees shorter than the widest one are padded with
self-looping leaves.

How the loop runs (measured by `benchmarks/tree_strategies.py` and the throughput
benchmark, 2-core CPU): on CPU the trees run one after another (`lax.map`) and each
tree's loop stops as soon as all rows sit on leaves (a `while_loop` bounded by
`depth`), so a tree costs its own depth, not the deepest tree's. Against running
every tree for `depth` steps (vmapped): 2.1x on sklearn's default
HistGradientBoosting (trees of 31 leaves up to 22 deep), 1.7x on a full-depth
RandomForest, 1.4x on a depth-8 forest (one run; an earlier run under heavier load
gave 0.8x on the depth-8 forest). On accelerators (not measured here) the
trees are vmapped and every tree runs `depth` steps, since serialising trees there
costs kernel launches. Both reach the same leaves. Perfect-tree traversal and packed
node tables were slower on CPU; Hummingbird's GEMM costs O(internal nodes x leaves)
per tree and row instead of O(depth).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from jaxscm._output import OUTPUTS, finish
from jaxscm._pytree import pytree_dataclass, static


@pytree_dataclass
class TreeEnsemble:
    """A sum or mean of decision trees, plus a baseline.

    Attributes:
      feature: (t, m) parent column tested at each node (any valid index at leaves).
      threshold: (t, m) split thresholds. For exact agreement with sklearn on float32
        inputs, store each float64 threshold rounded *down* to float32.
      left, right: (t, m) child node indices; a leaf has left == right == itself.
      missing_left: (t, m) where a NaN goes.
      value: (t, m, k) leaf values (raw scores, or class probabilities).
      base: (k,) baseline added after aggregation.
      depth: number of loop steps, at least the depth of the deepest tree.
      aggregation: "sum" (boosting) or "mean" (forests).
      output: "identity", "sigmoid" or "softmax" applied to the aggregate.

    Examples:
      >>> import jax.numpy as jnp
      >>> stump = TreeEnsemble(  # x0 <= 0.5 -> 1.0 else 3.0
      ...     feature=jnp.array([[0, 0, 0]]), threshold=jnp.array([[0.5, 0.0, 0.0]]),
      ...     left=jnp.array([[1, 1, 2]]), right=jnp.array([[2, 1, 2]]),
      ...     missing_left=jnp.array([[True, True, True]]),
      ...     value=jnp.array([[[0.0], [1.0], [3.0]]]), base=jnp.zeros(1), depth=1)
      >>> stump(jnp.array([[0.0], [1.0]])).tolist()
      [1.0, 3.0]
    """

    feature: Int[Array, "t m"]
    threshold: Float[Array, "t m"]
    left: Int[Array, "t m"]
    right: Int[Array, "t m"]
    missing_left: Bool[Array, "t m"]
    value: Float[Array, "t m k"]
    base: Float[Array, " k"]
    depth: int = static()
    aggregation: str = static(default="sum")
    output: str = static(default="identity")
    n_features: int = static(default=-1)

    def __post_init__(self) -> None:
        if self.aggregation not in ("sum", "mean"):
            raise ValueError(
                f"aggregation must be 'sum' or 'mean', got {self.aggregation!r}"
            )
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {self.output!r}")
        shape = jnp.shape(self.feature)
        for name in ("threshold", "left", "right", "missing_left"):
            if jnp.shape(getattr(self, name)) != shape:
                raise ValueError(
                    f"TreeEnsemble.{name} has shape {jnp.shape(getattr(self, name))}, "
                    f"expected {shape} like `feature`"
                )
        if jnp.shape(self.value)[:2] != shape:
            raise ValueError(
                f"TreeEnsemble.value has shape {jnp.shape(self.value)}, "
                f"expected {shape} + (k,)"
            )
        if self.depth < 0:
            raise ValueError(f"depth must be >= 0, got {self.depth}")

    @property
    def n_inputs(self) -> int:
        """Number of parent columns this predictor takes (-1 if unknown)."""
        return self.n_features

    def leaves(self, x: Float[Array, "n p"]) -> Int[Array, "t n"]:
        """Index of the leaf each row reaches in each tree."""
        n = x.shape[0]
        tables = (
            self.feature,
            self.threshold,
            self.left,
            self.right,
            self.missing_left,
        )

        def step(node, feature, threshold, left, right, missing_left):
            xv = jnp.take_along_axis(x, feature[node][:, None], axis=1)[:, 0]
            le = xv <= threshold[node]
            go_left = jnp.where(jnp.isnan(xv), missing_left[node], le)
            return jnp.where(go_left, left[node], right[node])

        if jax.default_backend() == "cpu":

            def until_leaves(table):
                left = table[2]

                def more(state):
                    node, i = state
                    return (i < self.depth) & ~jnp.all(left[node] == node)

                def body(state):
                    node, i = state
                    return step(node, *table), i + 1

                start = (jnp.zeros((n,), left.dtype), jnp.asarray(0))
                return jax.lax.while_loop(more, body, start)[0]

            return jax.lax.map(until_leaves, tables)

        def fixed_depth(*table):
            node = jnp.zeros((n,), table[2].dtype)
            for _ in range(self.depth):
                node = step(node, *table)
            return node

        return jax.vmap(fixed_depth)(*tables)

    def __call__(self, x: Float[Array, "n p"]) -> Float[Array, " n *k"]:
        """Evaluates the ensemble on parent values `x`."""
        leaf = self.leaves(x)  # (t, n)
        per_tree = jax.vmap(lambda v, i: v[i])(self.value, leaf)  # (t, n, k)
        agg = per_tree.sum(0) if self.aggregation == "sum" else per_tree.mean(0)
        z = agg + self.base[None, :]
        if z.shape[-1] == 1:
            z = z[:, 0]
        return finish(z, self.output)
