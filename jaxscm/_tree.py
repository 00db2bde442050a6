"""Tree ensembles held as padded arrays, evaluated by leaf bitmasks or a gather loop.

Each tree is a flat node table. Node 0 is the root. An internal node sends a row to
`left` when `x[feature] <= threshold` and to `right` otherwise; a NaN goes where
`missing_left` says (HistGradientBoosting semantics; sklearn's exact trees never see
NaN). A leaf points to itself in both `left` and `right`, so running the loop for
`depth` steps, the depth of the deepest tree, lands every row on its leaf whatever
the depth of its own tree. Trees shorter than the widest one are padded with
self-looping leaves.

Small trees (at most 63 nodes per tree, so at most 32 leaves: sklearn's default
HistGradientBoosting has <= 31) also carry QuickScorer leaf words (`LeafWords`), built
in NumPy from the node tables whenever a `TreeEnsemble` is made from concrete arrays.
With the leaves numbered left to right, each internal node holds a uint32 with the
bits of its left subtree's leaves cleared; a row compares against all internal nodes
at once, ANDs the words of the nodes that send it right, and its leaf is the lowest
set bit. No loop over depth or trees: on CPU this is 6.4x sklearn's own predict at
512 rows and 3.5x at 100,000 rows, against 1.1-1.2x for the loop below
(`benchmarks/results/tree_strategies.md`, sklearn's default HistGradientBoosting).
It reaches the very same leaves, so the outputs are bit-identical to the loop's.

Larger trees use a loop (measured by `benchmarks/tree_strategies.py` and the
throughput benchmark, 2-core CPU): on CPU the trees run one after another (`lax.map`)
and each tree's loop stops as soon as all rows sit on leaves (a `while_loop` bounded
by `depth`), so a tree costs its own depth, not the deepest tree's. Against running
every tree for `depth` steps (vmapped): 2.1x on sklearn's default
HistGradientBoosting (trees of 31 leaves up to 22 deep), 1.7x on a full-depth
RandomForest, 1.4x on a depth-8 forest (one run; an earlier run under heavier load
gave 0.8x on the depth-8 forest). On accelerators (not measured here: no device was
available) the trees are vmapped and every tree runs `depth` steps, since serialising
trees there costs kernel launches, and the leaf words are not used. Both reach the
same leaves. Perfect-tree traversal and packed node tables were slower on CPU;
Hummingbird's GEMM costs O(internal nodes x leaves) per tree and row instead of
O(depth).
"""

from __future__ import annotations

import hashlib

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, UInt32

from jaxscm._output import OUTPUTS, finish
from jaxscm._pytree import concrete, pytree_dataclass, static, to_device

MAX_WORD_NODES = 63  # a binary tree of <= 63 nodes has <= 32 leaves: one uint32
_ALL = np.uint32(0xFFFFFFFF)
_BLOCK = 2048  # rows per block of the leaf-word evaluation (keeps the words in cache)


@pytree_dataclass
class LeafWords:
    """QuickScorer tables of a `TreeEnsemble` whose trees have at most 32 leaves.

    The split of every internal node is copied out of the node tables, so the
    evaluation gathers nothing but the rows' values. Padded slots hold a word of all
    ones, which clears no bit whichever way they send a row (feature 0, threshold 0).

    Attributes:
      feature, threshold, missing_left: (t, i) the split of each internal node.
      word: (t, i) all ones except the bits of the node's left-subtree leaves.
      leaf: (t, 32) node index of each leaf bit, leaves numbered left to right.
    """

    feature: Int[Array, "t i"]
    threshold: Float[Array, "t i"]
    missing_left: Bool[Array, "t i"]
    word: UInt32[Array, "t i"]
    leaf: Int[Array, "t 32"]


_TOPOLOGY_CACHE: dict[bytes, tuple[np.ndarray, ...] | None] = {}
_TOPOLOGY_CACHE_SIZE = 1024


def leaf_words(
    feature: np.ndarray,
    threshold: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    missing_left: np.ndarray,
) -> LeafWords | None:
    """The `LeafWords` of concrete node tables, or None where they do not apply.

    None for more than `MAX_WORD_NODES` nodes per tree, and for tables whose nodes
    reachable from the root do not form a binary tree (a child index out of range, a
    node with two parents or two equal children): those keep the gather loop. The
    tree shapes are remembered by content (`stack` rebuilds the same trees: class
    padding, the calibration's ensemble and the final one).
    """
    left, right = np.asarray(left), np.asarray(right)
    h = hashlib.blake2b(digest_size=16)
    for a in (left, right):
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    key = h.digest()
    if key not in _TOPOLOGY_CACHE:
        if len(_TOPOLOGY_CACHE) >= _TOPOLOGY_CACHE_SIZE:
            _TOPOLOGY_CACHE.pop(next(iter(_TOPOLOGY_CACHE)))  # the oldest entry
        _TOPOLOGY_CACHE[key] = _topology(left, right)
    topology = _TOPOLOGY_CACHE[key]
    if topology is None:
        return None
    internal, used, word, leaf = topology
    rows = np.arange(internal.shape[0])[:, None]
    threshold = np.asarray(threshold)
    return LeafWords(
        feature=to_device(np.where(used, np.asarray(feature)[rows, internal], 0)),
        threshold=to_device(
            np.where(used, threshold[rows, internal], 0).astype(threshold.dtype)
        ),
        missing_left=to_device(np.asarray(missing_left)[rows, internal] | ~used),
        word=to_device(word),
        leaf=to_device(leaf),
    )


def _topology(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, ...] | None:
    """(internal node per slot, slot used, word, leaf) of child tables, or None.

    Vectorised over trees; loops only over depth.
    """
    t, m = left.shape
    if m > MAX_WORD_NODES or t == 0:
        return None
    if left.min() < 0 or right.min() < 0 or max(left.max(), right.max()) >= m:
        return None
    rows = np.arange(t)[:, None]
    is_leaf = left == np.arange(m)
    half_leaf = is_leaf != (right == np.arange(m))  # points to itself on one side
    # Internal nodes reachable from the root, level by level, as (tree, node) pairs.
    reach = np.zeros((t, m), bool)
    reach[:, 0] = True
    b, v = np.arange(t), np.zeros(t, np.int64)
    levels, seen = [], t
    while b.size:
        keep = ~is_leaf[b, v]
        b, v = b[keep], v[keep]
        levels.append((b, v))
        b, v = np.concatenate([b, b]), np.concatenate([left[b, v], right[b, v]])
        if reach[b, v].any():
            return None  # a node reached again: not a tree
        reach[b, v] = True
        seen += b.size
        if reach.sum() < seen:
            return None  # two children are one node: not a tree
    if (reach & half_leaf).any():
        return None
    inner = reach & ~is_leaf
    # Leaves below each node (bottom up), then each node's first leaf (top down).
    count = (reach & is_leaf).astype(np.int64)
    for b, v in reversed(levels):
        count[b, v] = count[b, left[b, v]] + count[b, right[b, v]]
    first = np.zeros((t, m), np.int64)
    for b, v in levels:
        first[b, left[b, v]] = first[b, v]
        first[b, right[b, v]] = first[b, v] + count[b, left[b, v]]
    lo = np.where(inner, first[rows, left], 0)
    n_left = np.where(inner, count[rows, left], 0)
    cleared = ((np.int64(1) << n_left) - 1) << lo
    word = np.where(inner, ~cleared & 0xFFFFFFFF, 0xFFFFFFFF).astype(np.uint32)
    leaf = np.zeros((t, 32), np.int32)
    lb, lv = np.nonzero(reach & is_leaf)
    leaf[lb, first[lb, lv]] = lv
    # Internal nodes first, in node order (the AND does not care), then padding.
    width = max(1, min(31, (m - 1) // 2))
    slots = np.argsort(~inner, axis=1, kind="stable")[:, :width]
    used = inner[rows, slots]
    return (
        np.where(used, slots, 0),
        used,
        np.where(used, word[rows, slots], _ALL).astype(np.uint32),
        leaf,
    )


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
      words: the trees' `LeafWords`, or None. Derived: whenever the node tables are
        concrete, construction rebuilds them from the node tables (None for trees of
        more than 63 nodes), whatever is passed.
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
    words: LeafWords | None = None
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
        if concrete(*self._tables):
            object.__setattr__(self, "words", leaf_words(*self._tables))

    @property
    def _tables(self) -> tuple[Array, ...]:
        """The node tables, in the order `leaf_words` and the loop take them."""
        return (
            self.feature,
            self.threshold,
            self.left,
            self.right,
            self.missing_left,
        )

    @property
    def n_inputs(self) -> int:
        """Number of parent columns this predictor takes (-1 if unknown)."""
        return self.n_features

    def leaves(self, x: Float[Array, "n p"]) -> Int[Array, "t n"]:
        """Index of the leaf each row reaches in each tree."""
        if self.words is not None and jax.default_backend() == "cpu":
            return self._word_leaves(x)
        return self._loop_leaves(x)

    def _loop_leaves(self, x: Float[Array, "n p"]) -> Int[Array, "t n"]:
        """`leaves` by walking the node tables (any tree size)."""
        n = x.shape[0]
        tables = self._tables

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

    def _word_leaves(self, x: Float[Array, "n p"]) -> Int[Array, "t n"]:
        """`leaves` by the leaf words: no loop over depth or trees."""
        words = self.words
        assert words is not None
        feature, threshold, missing = words.feature, words.threshold, words.missing_left

        def rows(xb: Float[Array, "b p"]) -> Int[Array, "t b"]:
            xv = xb[:, feature]  # (b, t, i)
            go_left = jnp.where(jnp.isnan(xv), missing[None], xv <= threshold[None])
            kept = jnp.where(go_left, _ALL, words.word[None])
            v = jax.lax.reduce(kept, _ALL, jax.lax.bitwise_and, (2,))
            lowest = v & (~v + np.uint32(1))
            bit = (31 - jax.lax.clz(lowest)).astype(jnp.int32)  # (b, t)
            return jnp.take_along_axis(words.leaf, bit.T, axis=1)

        n = x.shape[0]
        if n <= _BLOCK:
            return rows(x)
        xb = jnp.pad(x, ((0, -n % _BLOCK), (0, 0))).reshape(-1, _BLOCK, x.shape[1])
        out = jax.lax.map(rows, xb)  # (blocks, t, block)
        return jnp.moveaxis(out, 0, 1).reshape(out.shape[1], -1)[:, :n]

    def __call__(self, x: Float[Array, "n p"]) -> Float[Array, " n *k"]:
        """Evaluates the ensemble on parent values `x`."""
        leaf = self.leaves(x)  # (t, n)
        per_tree = jax.vmap(lambda v, i: v[i])(self.value, leaf)  # (t, n, k)
        agg = per_tree.sum(0) if self.aggregation == "sum" else per_tree.mean(0)
        z = agg + self.base[None, :]
        if z.shape[-1] == 1:
            z = z[:, 0]
        return finish(z, self.output)
