"""Tree-ensemble evaluation strategies in JAX, against sklearn's compiled predict.

``python -m benchmarks.tree_strategies [--rows N]`` fits a HistGradientBoosting
regressor (sklearn defaults: 100 trees of <= 31 leaves, unbounded depth) and two
RandomForests (100 trees, full depth / max_depth 8) on 2,000 rows, distils them with
jaxscm and times each strategy on the same `TreeEnsemble` arrays:

* ``gather``: the fixed-depth gather loop, all trees vmapped, every tree run for the
  ensemble's `depth` steps (6 gathers per level: feature, x, threshold, missing,
  left, right); what `TreeEnsemble.leaves` does on accelerators;
* ``while``: `TreeEnsemble.leaves` on CPU for trees of more than 63 nodes: trees one
  after another, each looping only until all its rows sit on leaves (so a tree costs
  its own depth);
* ``packed``: the same loop over packed tables (feature and missing direction in one
  int, children side by side: 4 gathers per level);
* ``ptt``: Hummingbird's perfect-tree traversal: every tree is padded (in the traced
  program) to a perfect tree of the ensemble's depth, so the child index is
  ``2 * pos + go_right`` and left/right are never gathered; costs 2^depth per tree.

* ``bitmask``: QuickScorer's leaf bitmasks, for trees of at most 32 leaves. With the
  leaves numbered left to right, every internal node gets a uint32 word with the bits
  of its left subtree's leaves cleared; a row evaluates all internal nodes at once
  (one gather, one compare), ANDs the words of the nodes that send it right, and its
  leaf is the lowest set bit. No loop over depth and no per-tree loop; rows are taken
  in blocks of 2,048 (`lax.map`) so the (rows, trees, nodes) words stay in cache. The
  tables (`TreeEnsemble.words`) are built in NumPy when the ensemble is made, outside
  the timed program; `TreeEnsemble.leaves` uses them on CPU.

Hummingbird's GEMM strategy (decisions of all internal nodes at once, then a
(internal x leaves) path matrix product) costs O(internal * leaves) per tree and row
instead of O(depth); it is listed in the findings of the throughput note, not here.
Every strategy must reach the very same leaves as the gather loop (checked).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxscm import TreeEnsemble


def gather_leaves(te: TreeEnsemble, x: jax.Array) -> jax.Array:
    """(t, n) leaf index per tree: every tree runs `depth` steps, trees vmapped."""
    n = x.shape[0]

    def one_tree(feature, threshold, left, right, missing_left):
        node = jnp.zeros((n,), left.dtype)
        for _ in range(te.depth):
            xv = jnp.take_along_axis(x, feature[node][:, None], axis=1)[:, 0]
            le = xv <= threshold[node]
            go_left = jnp.where(jnp.isnan(xv), missing_left[node], le)
            node = jnp.where(go_left, left[node], right[node])
        return node

    return jax.vmap(one_tree)(
        te.feature, te.threshold, te.left, te.right, te.missing_left
    )


def while_leaves(te: TreeEnsemble, x: jax.Array) -> jax.Array:
    """(t, n) leaf index per tree: jaxscm's per-tree loops (`TreeEnsemble.leaves` on
    CPU for trees of more than 63 nodes)."""
    if jax.default_backend() != "cpu":
        raise ValueError("the while strategy is the CPU path")
    return te._loop_leaves(x)


def packed_leaves(te: TreeEnsemble, x: jax.Array) -> jax.Array:
    """(t, n) leaf index per tree, 4 gathers per level."""
    t, m = te.feature.shape
    n = x.shape[0]
    fm = te.feature * 2 + te.missing_left.astype(te.feature.dtype)
    children = jnp.stack([te.left, te.right], -1).reshape(t, 2 * m)

    def one_tree(fm: jax.Array, thr: jax.Array, ch: jax.Array) -> jax.Array:
        node = jnp.zeros((n,), ch.dtype)
        for _ in range(te.depth):
            code = fm[node]
            xv = jnp.take_along_axis(x, (code >> 1)[:, None], axis=1)[:, 0]
            go_right = jnp.where(jnp.isnan(xv), (code & 1) == 0, xv > thr[node])
            node = ch[2 * node + go_right.astype(ch.dtype)]
        return node

    return jax.vmap(one_tree)(fm, te.threshold, children)


def ptt_leaves(te: TreeEnsemble, x: jax.Array) -> jax.Array:
    """(t, n) leaf index per tree by perfect-tree traversal."""
    t, _ = te.feature.shape
    n = x.shape[0]
    node = jnp.zeros((t, 1), te.left.dtype)
    levels = []
    for _ in range(te.depth):
        levels.append(node)
        # a leaf's two "children" are itself, so padding keeps its value
        left = jnp.take_along_axis(te.left, node, 1)
        right = jnp.take_along_axis(te.right, node, 1)
        node = jnp.stack([left, right], -1).reshape(t, -1)
    pos = jnp.zeros((t, n), jnp.int32)
    cols = jnp.arange(n)[None, :]
    for nodes in levels:
        feat = jnp.take_along_axis(jnp.take_along_axis(te.feature, nodes, 1), pos, 1)
        thr = jnp.take_along_axis(jnp.take_along_axis(te.threshold, nodes, 1), pos, 1)
        miss = jnp.take_along_axis(
            jnp.take_along_axis(te.missing_left, nodes, 1), pos, 1
        )
        xv = x.T[feat, cols]
        go_left = jnp.where(jnp.isnan(xv), miss, xv <= thr)
        pos = 2 * pos + (~go_left).astype(jnp.int32)
    return jnp.take_along_axis(node, pos, 1)


def bitmask_leaves(te: TreeEnsemble, x: jax.Array) -> jax.Array:
    """(t, n) leaf index per tree by the leaf words: jaxscm's `TreeEnsemble.leaves`
    on CPU for trees of <= 63 nodes."""
    if te.words is None:
        raise ValueError("bitmask needs trees of <= 63 nodes (<= 32 leaves)")
    return te._word_leaves(x)


STRATEGIES: dict[str, Callable[[TreeEnsemble, jax.Array], jax.Array]] = {
    "gather": gather_leaves,
    "while": while_leaves,
    "packed": packed_leaves,
    "ptt": ptt_leaves,
    "bitmask": bitmask_leaves,
}


def _predict(te: TreeEnsemble, leaf: jax.Array) -> jax.Array:
    per_tree = jax.vmap(lambda v, i: v[i])(te.value, leaf)
    agg = per_tree.sum(0) if te.aggregation == "sum" else per_tree.mean(0)
    return (agg + te.base[None])[:, 0]


def bench(est: Any, rows: int, strategies: tuple[str, ...]) -> dict[str, Any]:
    """rows/s of sklearn predict and each JAX strategy on one fitted estimator."""
    from jaxscm.distillation._sklearn import register, sklearn_predictor

    class _Ctx:
        dtype = jnp.float32
        where = type(est).__name__

        def array(self, a: Any) -> jax.Array:
            return jnp.asarray(a, jnp.float32)

    register()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 3))
    est.fit(x, np.sin(x).sum(1) + 0.3 * rng.normal(size=2000))
    te = sklearn_predictor(est, _Ctx(), False)
    xt = rng.normal(size=(rows, 3)).astype(np.float32)
    t = time.perf_counter()
    est.predict(xt.astype(np.float64))
    res: dict[str, Any] = {
        "model": type(est).__name__,
        "trees": int(te.feature.shape[0]),
        "nodes_per_tree": int(te.feature.shape[1]),
        "depth": te.depth,
        "sklearn_rows_per_s": rows / (time.perf_counter() - t),
    }
    xj = jnp.asarray(xt)
    # The leaves are checked on rows with missing values too (their learned side).
    check = xj[:2000].at[::7, 1].set(jnp.nan)
    ref = np.asarray(gather_leaves(te, check))
    for name in strategies:
        leaves = STRATEGIES[name]
        f = jax.jit(lambda te, x, leaves=leaves: _predict(te, leaves(te, x)))
        t = time.perf_counter()
        f(te, xj).block_until_ready()
        compile_s = time.perf_counter() - t
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            f(te, xj).block_until_ready()
            best = min(best, time.perf_counter() - t)
        res[name] = {
            "rows_per_s": rows / best,
            "compile_s": compile_s - best,
            "same_leaves": bool((np.asarray(leaves(te, check)) == ref).all()),
        }
    return res


def main(argv: list[str] | None = None) -> int:
    """Prints one line per model and strategy."""
    __import__("jaxscm").enable_compilation_cache()  # README: CAUSALMIXFT_JAX_CACHE
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=100_000)
    args = p.parse_args(argv)
    for est, strategies in (
        (
            HistGradientBoostingRegressor(random_state=0),
            ("gather", "while", "packed", "bitmask"),
        ),
        (RandomForestRegressor(random_state=0), ("gather", "while")),
        (
            RandomForestRegressor(max_depth=8, random_state=0),
            ("gather", "while", "packed", "ptt"),
        ),
    ):
        r = bench(est, args.rows, strategies)
        print(
            f"{r['model']}: {r['trees']} trees x {r['nodes_per_tree']} nodes, depth "
            f"{r['depth']}; sklearn predict "
            f"{r['sklearn_rows_per_s'] / 1e6:.3f} M rows/s"
        )
        for s in strategies:
            print(
                f"  {s:7s} {r[s]['rows_per_s'] / 1e6:.3f} M rows/s, compile "
                f"{r[s]['compile_s']:.1f}s, "
                f"same leaves as gather: {r[s]['same_leaves']}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
