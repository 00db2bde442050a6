"""Canonical forms of mechanisms, so that `stack` can group many of them as one.

`jaxscm.stack` evaluates, at every position of the members' topological orders, each
group of mechanisms that share a PyTree structure and array shapes. Members of a
DAG ensemble put different columns and parent sets at the same position, and
distillation wraps predictors in different pipelines, so mechanisms are first
rewritten into forms that compute the same values but share structure:

* a `Root(noise)` becomes `Additive(Linear(0, 0), noise)` (0 + noise is exact);
* linear and MLP inputs are zero-padded to the widest parent set (padded parent
  values are masked to 0, and 0 * 0 adds nothing);
* tree ensembles with the same number of trees are padded to a common node count
  with zero-valued self-looping nodes, means become sums of pre-divided values, and
  the loop runs to the deepest (tree counts are not padded: an extra tree would
  still cost an iteration of the loop over trees);
* when any member encodes categorical parents (a distilled `Pipeline(Encode, ...)`)
  every predictor starts with an `Embed`, which gives each parent slot the same
  width, and the predictor reads its inputs at their moved columns;
* when any member standardises its inputs, every predictor gets a `Standardize`
  (mean 0 and scale 1 where it had none: x - 0 and x / 1 are exact);
* classifiers become `CodeClassifier`s over the widest class count: binary logits
  `z` become the two logits `[0, z]`, missing classes get logit -inf (probability
  exactly 0), and a 0/1 `Permute` matrix maps the model's classes to the column's
  categories (a trailing `Select` is folded into it).

* output maps (`Mapped`) are padded to common knot counts (knots continuing at
  slope 0) and support sizes (the last value repeated), and where any member at a
  position has one, the other numeric mechanisms get an identity map (every step
  switched off by `jnp.where`: exact); point-mass gates are canonical predictors
  over two classes, their rests canonical mechanisms with residuals padded (the
  padding is never read: `PointMass.count`).

Only the binary sigmoid -> two-logit softmax step changes rounding (by float ulps);
everything else computes bit for bit what the member computes. Predictors of other
shapes (e.g. surrogate pipelines, MinMax scaling) are left as they are, grouped by
their own structure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from jaxscm._features import Embed, Encode, Pipeline, Select, Standardize
from jaxscm._linear import Linear
from jaxscm._marginal import Mapped, PointMass
from jaxscm._mechanisms import Additive, Classifier, Root
from jaxscm._mlp import MLP
from jaxscm._noise import Empirical
from jaxscm._pytree import pytree_dataclass, to_device
from jaxscm._schema import Column
from jaxscm._tree import MAX_WORD_NODES, TreeEnsemble


@pytree_dataclass
class Permute:
    """`x @ matrix`: moves probability columns with a 0/1 matrix (exact).

    Examples:
      >>> import jax.numpy as jnp
      >>> swap = Permute(matrix=jnp.array([[0.0, 1.0], [1.0, 0.0]]))
      >>> swap(jnp.array([[0.25, 0.75]])).tolist()
      [[0.75, 0.25]]
    """

    matrix: Float[Array, "k q"]

    def __call__(self, x: Float[Array, "n k"]) -> Float[Array, "n q"]:
        """Moves the columns."""
        return x @ self.matrix.astype(x.dtype)


@pytree_dataclass
class CodeClassifier:
    """A `Classifier` whose probabilities are padded with never-drawn classes.

    Draws like `Classifier` (first class whose cumulative probability reaches the
    uniform noise) but clips to `last`, the column's own last category, where
    `Classifier` clips to the width of its probabilities: the two agree on every
    draw when the padded classes have probability 0.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxscm import Linear
      >>> m = CodeClassifier(
      ...     f=Linear(jnp.zeros((1, 3)), jnp.log(jnp.array([0.5, 0.5, 0.0])),
      ...              output="softmax"), last=jnp.array(1.0))
      >>> m.apply(jnp.zeros((2, 1)), jnp.array([0.4, 1.0])).tolist()
      [0.0, 1.0]
    """

    f: Any
    last: Float[Array, ""]

    # Noise, probabilities and the draw are `Classifier`'s (they use only `f`).
    sample_noise = Classifier.sample_noise
    probabilities = Classifier.probabilities

    def apply(
        self, parents: Float[Array, "n p"], noise: Float[Array, " n"]
    ) -> Float[Array, " n"]:
        """Inverse-CDF draw of the class code, clipped to the column's last code."""
        code = Classifier.apply(self, parents, noise)  # type: ignore[arg-type]
        return jnp.minimum(code, self.last.astype(noise.dtype))


def split(f: Any) -> tuple[Any, Any, Any, tuple[Any, ...]] | None:
    """(Encode or None, Standardize or None, core, trailing Selects), if `f` fits."""
    steps = list(f.steps) if isinstance(f, Pipeline) else [f]
    enc = steps.pop(0) if steps and isinstance(steps[0], Encode) else None
    scaler = steps.pop(0) if steps and isinstance(steps[0], Standardize) else None
    if (
        steps
        and isinstance(steps[0], (Linear, MLP, TreeEnsemble))
        and all(isinstance(s, Select) for s in steps[1:])
        and len(steps) <= 2
    ):
        return enc, scaler, steps[0], tuple(steps[1:])
    return None


def envelope(nodes: Sequence[tuple[Column, Any]]) -> dict[str, Any]:
    """Common shapes for mechanisms that may share a group: trees (count, nodes,
    depth; separately for additive and classifier mechanisms), embedding
    (categories, width), scaling, class count.

    `stack` calls this once for all positions and members, so that mechanisms of
    one kind have one shape wherever they sit and the sampler compiles one body per
    kind, and takes the trees' entry per position (padded nodes cost time on every
    row). Trees are padded in node count and depth only, per (mechanism kind, tree
    count, word-sized): a padded tree would still cost an iteration of the
    evaluation's loop over trees.
    """
    trees: dict[tuple[str, int, bool], list[tuple[int, int, int]]] = {}
    tables, classes, scale = [], [], False
    knots, support, resid, mapped = [], [], [], False
    for col, m in nodes:
        for kind, f, is_clf in _predictors(m):
            parts = split(f)
            if parts is None:
                continue
            enc, scaler, core, _ = parts
            if isinstance(core, TreeEnsemble):
                t, nodes_per_tree = core.feature.shape
                shape = (t, nodes_per_tree, core.depth)
                trees.setdefault(_tree_key(kind, core), []).append(shape)
            if enc is not None:
                tables.extend(jnp.shape(t) for t in enc.tables)
            scale = scale or scaler is not None
            if is_clf:
                classes.append(max(col.n_categories, 2))
        for w in _wrappers(m):
            if isinstance(w, Mapped):
                mapped = True
                knots.append(jnp.shape(w.warp_x)[0])
                support.append(jnp.shape(w.support)[0])
            else:
                resid.append(jnp.shape(w.rest.noise.values)[0])
    return {
        "trees": {
            kind: tuple(max(s[i] for s in shapes) for i in range(3)) if shapes else None
            for kind, shapes in trees.items()
        },
        "embed": (
            (max(t[0] for t in tables), max(t[1] for t in tables)) if tables else None
        ),
        "scale": scale,
        "classes": max(classes) if classes else None,
        "mapped": (max(knots), max(support)) if mapped else None,
        "residuals": max(resid) if resid else None,
    }


def _tree_key(kind: str, core: TreeEnsemble) -> tuple[str, int, bool]:
    """Trees share a padded shape per (mechanism kind, tree count, word-sized): small
    trees are not padded past `MAX_WORD_NODES`, which would lose their leaf words."""
    t, nodes_per_tree = core.feature.shape
    return kind, t, nodes_per_tree <= MAX_WORD_NODES


def _predictors(m: Any) -> list[tuple[str, Any, bool]]:
    """(tree kind, predictor, is a classifier over the column's classes) inside `m`."""
    if isinstance(m, Mapped):
        return _predictors(m.mech)
    if isinstance(m, PointMass):
        return [("Gate", m.gate, False), *_predictors(m.rest)]
    if isinstance(m, (Additive, Classifier)):
        return [(type(m).__name__, m.f, isinstance(m, Classifier))]
    return []


def _wrappers(m: Any) -> list[Any]:
    """The `Mapped` and `PointMass` wrappers inside `m`, outermost first."""
    if isinstance(m, Mapped):
        return [m, *_wrappers(m.mech)]
    if isinstance(m, PointMass):
        return [m, *_wrappers(m.rest)]
    return []


def canonical(mech: Any, p: int, p_max: int, env: dict[str, Any], n_categories: int):
    """An equivalent mechanism in canonical form, and how many inputs it reads.

    Where any member at this position has an output map (`Mapped`), the numeric
    mechanisms without one get an identity map (every step switched off, exact),
    and all maps are padded to common knot and support sizes, so they share groups.
    """
    out, reads = _canonical(mech, p, p_max, env, n_categories)
    if env.get("mapped") is not None and not isinstance(out, (Mapped, CodeClassifier)):
        if isinstance(out, (Additive, PointMass)):
            knots, size = env["mapped"]
            out = Mapped.identity(out, dtype=float_dtype(out), knots=knots, size=size)
    return out, reads


def _canonical(mech: Any, p: int, p_max: int, env: dict[str, Any], n_categories: int):
    if isinstance(mech, Mapped):
        inner, reads = _canonical(mech.mech, p, p_max, env, n_categories)
        knots, size = env["mapped"]
        m = jnp.shape(mech.warp_x)[0]
        # Knots past the last one continue at slope 0 (interp values unchanged);
        # support padded with its last value (the nearest value unchanged).
        warp_x = np.asarray(mech.warp_x)  # host-side, as in `_pad_edge`
        step = np.arange(1, knots - m + 1, dtype=warp_x.dtype)
        return (
            Mapped(
                mech=inner,
                warp_x=to_device(np.concatenate([warp_x, warp_x[-1] + step])),
                warp_y=_pad_edge(mech.warp_y, knots),
                warped=mech.warped,
                lo=mech.lo,
                hi=mech.hi,
                clipped=mech.clipped,
                rounded=mech.rounded,
                support=_pad_edge(mech.support, size),
                snapped=mech.snapped,
            ),
            reads,
        )
    if isinstance(mech, PointMass):
        rest, reads = _canonical(mech.rest, p, p_max, env, n_categories)
        gate, gate_reads = mech.gate, p
        if split(mech.gate) is not None:
            gate = _predictor(mech.gate, p, p_max, env, kind="Gate", n_categories=2)
            gate_reads = p_max
        if reads != gate_reads:  # an odd predictor: keep the node as it is
            return mech, p
        return (
            PointMass(
                point=mech.point,
                gate=gate,
                rest=_with_residuals(rest, env["residuals"]),
                count=mech.count,
            ),
            reads,
        )
    if isinstance(mech, Root):
        dtype = float_dtype(mech)
        zero = Linear(coef=jnp.zeros((p_max,), dtype), intercept=jnp.zeros((), dtype))
        f = _predictor(zero, p_max, p_max, env, kind="Additive")
        return Additive(f=f, noise=mech.noise), p_max
    if isinstance(mech, (Additive, Classifier)) and split(mech.f) is not None:
        if isinstance(mech, Additive):
            f = _predictor(mech.f, p, p_max, env, kind="Additive")
            return (
                Additive(f=f, noise=mech.noise, link=mech.link, discrete=mech.discrete),
                p_max,
            )
        f = _predictor(
            mech.f, p, p_max, env, kind="Classifier", n_categories=n_categories
        )
        last = jnp.asarray(n_categories - 1, float_dtype(mech))
        return CodeClassifier(f=f, last=last), p_max
    return mech, p


def _pad_edge(a: jax.Array, size: int) -> jax.Array:
    a = np.asarray(a)  # host-side: the same values as jnp.pad, no XLA compile
    return to_device(np.pad(a, (0, size - a.shape[0]), mode="edge"))


def _move_rows(a: Any, index: np.ndarray, width: int) -> jax.Array:
    """A (width, ...) array of zeros holding row i of `a` at row `index[i]`."""
    a = np.asarray(a)
    out = np.zeros((width, *a.shape[1:]), a.dtype)
    out[index] = a
    return to_device(out)


def _with_residuals(rest: Any, size: int) -> Any:
    """`rest` with its (sorted) empirical residuals padded to `size` (`PointMass`
    reads only the first `count`)."""
    if isinstance(rest, Mapped):
        return dataclasses.replace(rest, mech=_with_residuals(rest.mech, size))
    return dataclasses.replace(
        rest, noise=Empirical(values=_pad_edge(rest.noise.values, size))
    )


def _predictor(
    f: Any,
    p: int,
    p_max: int,
    env: dict[str, Any],
    *,
    kind: str,
    n_categories: int | None = None,
) -> Any:
    enc, scaler, core, post = split(f)  # type: ignore[misc]  # callers checked
    dtype = float_dtype(core)
    pre: list[Any] = []
    if env["embed"] is None:
        index, width = np.arange(p), p_max  # input column -> canonical input column
    else:
        # Encode's output column for (input j, slot o) moves to j * w + o; inputs
        # without a table keep x_j in slot 0.
        k, w = env["embed"]
        tables = np.zeros((p_max, k, w), dtype)
        is_cat = np.zeros((p_max,), bool)
        lookup = {} if enc is None else dict(zip(enc.columns, enc.tables, strict=True))
        moved: list[int] = []
        for j in range(p):
            if j in lookup:
                t = np.asarray(lookup[j])
                tables[j, : t.shape[0], : t.shape[1]] = t
                is_cat[j] = True
                moved.extend(j * w + o for o in range(t.shape[1]))
            else:
                moved.append(j * w)
        index, width = np.asarray(moved, np.int64), p_max * w
        pre.append(Embed(tables=to_device(tables), is_categorical=to_device(is_cat)))
    if env["scale"]:
        mean, scale = np.zeros(width, dtype), np.ones(width, dtype)
        if scaler is not None:
            mean[index], scale[index] = (
                np.asarray(scaler.mean),
                np.asarray(scaler.scale),
            )
        pre.append(Standardize(mean=to_device(mean), scale=to_device(scale)))
    k_max = 2 if kind == "Gate" else env["classes"]
    trees = (
        env["trees"][_tree_key(kind, core)] if isinstance(core, TreeEnsemble) else None
    )
    core = _move_inputs(core, index, width, trees)
    if n_categories is None:
        steps = (*pre, core, *post)
    else:
        select = post[0].index if post else None
        core, matrix = _pad_classes(core, k_max, n_categories, select)
        steps = (*pre, core, Permute(matrix=to_device(matrix)))
    return steps[0] if len(steps) == 1 else Pipeline(steps=steps)


def _move_inputs(
    f: Any, index: np.ndarray, width: int, trees: tuple[int, int, int] | None
) -> Any:
    """`f` reading canonical input column `index[i]` (of `width`) where it read i."""
    # Host-side NumPy for the pure data movement (zeros, row copies, padding):
    # the same values as the jnp ops, without compiling an XLA program per shape
    # (hundreds per ensemble, most of `stack`'s time on a CPU).
    if isinstance(f, Linear):
        coef = _move_rows(f.coef, index, width)
        return Linear(coef=coef, intercept=f.intercept, output=f.output)
    if isinstance(f, MLP):
        w0 = _move_rows(f.weights[0], index, width)
        return MLP(
            weights=(w0, *f.weights[1:]),
            biases=f.biases,
            activation=f.activation,
            output=f.output,
        )
    assert isinstance(f, TreeEnsemble)  # `split` admits only these three
    assert trees is not None  # `envelope` saw this tree
    t_max, m_max, depth = trees
    t, m = f.feature.shape
    value = np.asarray(f.value)
    value = value / value.dtype.type(t) if f.aggregation == "mean" else value
    pad2 = [(0, t_max - t), (0, m_max - m)]
    # Leaves hold an arbitrary feature; clipping keeps their lookup in range.
    lookup = np.asarray(index, np.int32) if index.size else np.zeros(1, np.int32)
    feature = np.asarray(f.feature)
    feature = lookup[np.clip(feature, 0, lookup.shape[0] - 1)].astype(feature.dtype)

    def pad(a: Any, fill: Any = 0) -> jax.Array:
        a = np.asarray(a)
        return to_device(
            np.pad(a, pad2 + [(0, 0)] * (a.ndim - 2), constant_values=fill)
        )

    # Padded nodes and trees are zero-valued leaves pointing at node 0; a padded
    # tree's root is such a leaf, so it adds exactly 0 to the sum.
    return TreeEnsemble(
        feature=pad(feature),
        threshold=pad(f.threshold),
        left=pad(f.left),
        right=pad(f.right),
        missing_left=pad(f.missing_left, True),
        value=pad(value),
        base=f.base,
        depth=depth,
        aggregation="sum",
        output=f.output,
    )


def _pad_classes(
    core: Any, k_max: int, n_categories: int, select: tuple[int, ...] | None
) -> tuple[Any, np.ndarray]:
    """`core` with `k_max` outputs (extra ones never drawn), and the class->category
    matrix that replaces the trailing `Select`."""
    sigmoid = core.output == "sigmoid"
    # Probability outputs ("identity", forests) pad with probability 0; logits with
    # -inf, whose softmax weight is exactly 0.
    fill = 0.0 if core.output == "identity" else -np.inf
    out = "identity" if core.output == "identity" else "softmax"

    def logits(a: Any, fill_value: float) -> jax.Array:
        # last axis = outputs: a sigmoid's single logit z becomes [0, z]. NumPy on
        # the host: the same values as jnp.concatenate / jnp.pad, no XLA compile.
        a = np.asarray(a)
        if sigmoid:
            a = np.concatenate([np.zeros_like(a), a], axis=-1)
        pad = [(0, 0)] * (a.ndim - 1) + [(0, k_max - a.shape[-1])]
        return to_device(np.pad(a, pad, constant_values=fill_value))

    if isinstance(core, Linear):
        coef = np.asarray(core.coef)[:, None] if sigmoid else core.coef
        bias = np.reshape(core.intercept, (1,)) if sigmoid else core.intercept
        k_model = 2 if sigmoid else jnp.shape(coef)[1]
        new: Any = Linear(
            coef=logits(coef, 0.0), intercept=logits(bias, fill), output=out
        )
    elif isinstance(core, MLP):
        k_model = 2 if sigmoid else jnp.shape(core.weights[-1])[1]
        new = MLP(
            weights=(*core.weights[:-1], logits(core.weights[-1], 0.0)),
            biases=(*core.biases[:-1], logits(core.biases[-1], fill)),
            activation=core.activation,
            output=out,
        )
    else:
        k_model = 2 if sigmoid else jnp.shape(core.value)[-1]
        new = TreeEnsemble(
            feature=core.feature,
            threshold=core.threshold,
            left=core.left,
            right=core.right,
            missing_left=core.missing_left,
            value=logits(core.value, 0.0),
            base=logits(core.base, fill),
            depth=core.depth,
            aggregation=core.aggregation,
            output=out,
        )
    matrix = np.zeros((k_max, k_max), float_dtype(core))
    for j in range(n_categories):
        i = select[j] if select is not None else (j if j < k_model else -1)
        if i >= 0:
            matrix[i, j] = 1.0
    return new, matrix


def float_dtype(mech: Any) -> jnp.dtype:
    """The first floating dtype among a PyTree's leaves (float32 if none)."""
    for x in jax.tree.leaves(mech):
        if jnp.issubdtype(jnp.result_type(x), jnp.floating):
            return jnp.result_type(x)
    return jnp.dtype(jnp.float32)
