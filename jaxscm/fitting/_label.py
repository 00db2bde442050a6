"""The target's mechanism in `fit_scm`: its parents, its classifier, its class share.

Discovery on ~128 rows keeps few edges into the target, so a DoWhy fit on the
discovered graph gives labels that barely depend on the features (issue 12). Three
switchable parts, all at the target node only (every other node keeps the parents
and mechanism the discovered graph gives it):

* parents (`LabelOptions.parents`): "discovered" keeps the sampled graph; "all" gives
  the target, in each graph, every feature that is not its descendant there (so the
  graph stays acyclic; with `DiscoveryOptions(target_sink=True)`, the default, that
  is every feature); "threshold" adds only the non-descendants whose discovered
  P(i -> target) + P(target -> i) (adjacency probability) reaches
  `LabelOptions.threshold`. Forbidden edges are never added.
* classifier (`LabelOptions.classifier`): "same" fits the target like every node
  (`fit_scm(mechanisms=...)`); "logistic_cv" fits standardised L2 logistic
  regression with C picked from `C_GRID` by stratified K-fold log-loss on the
  training rows. Measured worse than "same" (median validation TSTR, 128 rows):
  log-loss CV picks a small C, so the synthetic labels depend on the features too
  weakly for a model trained on them to rank the real rows well.
* class share (`LabelOptions.class_share`): after distillation, per-class logit
  offsets are added to each member's target classifier (folded into its intercept or
  tree baseline, so the model keeps its structure and is saved like any other) so
  that the member's expected class share on its own samples equals the training
  share: `offset_c += log(share_train_c) - log(share_synth_c)` for
  `share_steps` fixed-point steps, the synthetic share being the mean class
  probability over `share_rows` rows drawn from the member (its target's parents do
  not depend on the target, so they are drawn once, from all members stacked) with a
  key fixed by the seed.

The defaults were chosen by `python -m benchmarks.label_mechanism` on validation
splits of a development subset (see `benchmarks/results/label_mechanism.md`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxscm._canonical import float_dtype

PARENTS = ("discovered", "all", "threshold")
CLASSIFIERS = ("same", "logistic_cv")
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


@dataclasses.dataclass(frozen=True)
class LabelOptions:
    """How `fit_scm` builds the target's mechanism (rules in this module's doc).

    Attributes:
      parents: "discovered", "all" or "threshold".
      threshold: the adjacency probability an added parent needs ("threshold").
      classifier: "same" or "logistic_cv".
      class_share: calibrate each member's class share to the training share.
      share_steps: fixed-point steps of the calibration.
      share_rows: rows drawn per member to measure its class share.

    Examples:
      >>> LabelOptions().parents
      'all'
      >>> LabelOptions.off().class_share
      False
    """

    parents: str = "all"
    threshold: float = 0.05
    classifier: str = "same"
    class_share: bool = True
    share_steps: int = 30
    share_rows: int = 4096

    def __post_init__(self) -> None:
        if self.parents not in PARENTS:
            raise ValueError(
                f"LabelOptions.parents must be one of {PARENTS}, got {self.parents!r}"
            )
        if self.classifier not in CLASSIFIERS:
            raise ValueError(
                f"LabelOptions.classifier must be one of {CLASSIFIERS}, got "
                f"{self.classifier!r}"
            )
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(
                f"LabelOptions.threshold must be in [0, 1], got {self.threshold}"
            )
        if self.share_steps < 1 or self.share_rows < 1:
            raise ValueError(
                f"LabelOptions.share_steps and share_rows must be >= 1, got "
                f"{self.share_steps} and {self.share_rows}"
            )

    @classmethod
    def off(cls) -> LabelOptions:
        """The target fitted like any node on the discovered graphs, uncalibrated
        (what `fit_scm` did before these options; the same samples bit for bit)."""
        return cls(parents="discovered", classifier="same", class_share=False)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return dataclasses.asdict(self)


def widen_parents(
    dags: np.ndarray,
    edge_probs: np.ndarray,
    target: int,
    options: LabelOptions,
    forbidden: np.ndarray | None = None,
) -> np.ndarray:
    """The graphs with the target's parents widened by `options.parents`.

    Only edges into `target` are added, each from a node that is not a descendant
    of the target in that graph, so no cycle can form and every other node keeps
    its parents.

    Args:
      dags: (k, d, d) bool graphs, `[b, i, j]` for i -> j.
      edge_probs: (d, d) discovered P(i -> j).
      target: the target's column index.
      options: the rule.
      forbidden: (d, d) bool edges never to add.

    Returns:
      (k, d, d) bool graphs (a copy).

    Examples:
      >>> import numpy as np
      >>> g = np.zeros((1, 3, 3), bool); g[0, 2, 1] = True  # 2 -> 1 (target 2)
      >>> widen_parents(g, np.zeros((3, 3)), 2, LabelOptions())[0].astype(int)
      array([[0, 0, 1],
             [0, 0, 0],
             [0, 1, 0]])
    """
    out = np.array(dags, bool, copy=True)
    if options.parents == "discovered":
        return out
    d = out.shape[1]
    allowed = np.ones(d, bool)
    allowed[target] = False
    if forbidden is not None:
        allowed &= ~np.asarray(forbidden, bool)[:, target]
    if options.parents == "threshold":
        p = np.asarray(edge_probs, float)
        allowed &= (p[:, target] + p[target, :]) >= options.threshold
    for b in range(out.shape[0]):
        out[b, :, target] |= allowed & ~_descendants(out[b], target)
    return out


def _descendants(adj: np.ndarray, node: int) -> np.ndarray:
    """Nodes reachable from `node` (including it)."""
    seen = np.zeros(adj.shape[0], bool)
    seen[node] = True
    frontier = [node]
    while frontier:
        nxt = np.flatnonzero(adj[frontier].any(0) & ~seen)
        seen[nxt] = True
        frontier = list(nxt)
    return seen


def logistic_cv(X: np.ndarray, y: np.ndarray, seed: int) -> tuple[Any, float]:
    """An unfitted StandardScaler + L2 LogisticRegression, C from `C_GRID` by CV.

    The folds are stratified (as many as the rarest class allows, 2 to 5) and
    shuffled with `seed`; the C with the lowest mean held-out log-loss wins (the
    smallest such C on ties). With one class or too few rows per class, C=1.

    Returns:
      (the pipeline, its C).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def model(c: float) -> Any:
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))

    y = np.asarray(y).astype(np.int64)
    _, counts = np.unique(y, return_counts=True)
    folds = int(min(5, counts.min())) if counts.size > 1 else 0
    if folds < 2:
        return model(1.0), 1.0
    split = StratifiedKFold(folds, shuffle=True, random_state=seed % 2**31)
    losses = np.zeros(len(C_GRID))
    for train, test in split.split(X, y):
        for i, c in enumerate(C_GRID):
            m = model(c).fit(X[train], y[train])
            proba = m.predict_proba(X[test])
            col = {k: j for j, k in enumerate(m.classes_)}
            p = np.array(
                [proba[r, col[k]] if k in col else 0.0 for r, k in enumerate(y[test])]
            )
            losses[i] -= np.log(np.clip(p, 1e-12, 1.0)).sum()
    best = float(C_GRID[int(np.argmin(losses))])
    return model(best), best


def calibrate_shares(
    scms: Sequence[Any],
    share_train: np.ndarray,
    key: Any,
    options: LabelOptions,
    columns: Sequence[Any] | None = None,
) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """Each member's target classifier with logit offsets matching `share_train`.

    Args:
      scms: the distilled members (`jaxscm.SCM`, a target each).
      share_train: (n_categories,) the target's class shares in the training rows.
      key: a JAX key for the draw of the members' rows.
      options: `share_steps` and `share_rows`.
      columns: the column order of the stacked members (as in `jaxscm.stack`).

    Returns:
      (the members, the target's offsets folded in; (k, n_categories) offsets per
      category; (k, n_categories) each member's expected class share after).

    Raises:
      ValueError: a target mechanism whose probabilities are not a softmax or
        sigmoid of logits (offsets cannot be folded in exactly).
    """

    from jaxscm._ensemble import stack
    from jaxscm._sample import sample

    # One draw from the stacked members gives every member's target parents. Only
    # the target's ancestors are needed, so every other node (the target too) is
    # held at a constant: the ancestors draw the same noise (each column its own
    # key) through the same mechanisms, so their values are the full members', and
    # the sampler compiles only the mechanisms that matter here.
    ens = stack([_ancestors_only(scm) for scm in scms], columns=columns)
    where = {name: j for j, name in enumerate(ens.nodes)}
    rows = sample(key, ens, options.share_rows)
    out, offsets, shares = [], [], []
    for b, scm in enumerate(scms):
        t = scm.target
        cols = [where[scm.columns[p].name] for p in scm.parents[t]]
        x = rows[b][:, cols]
        mech, off, share = _calibrate(scm.mechanisms[t], x, share_train, options)
        mechs = list(scm.mechanisms)
        mechs[t] = mech
        out.append(dataclasses.replace(scm, mechanisms=tuple(mechs)))
        offsets.append(off)
        shares.append(share)
    return out, np.asarray(offsets), np.asarray(shares)


def _ancestors_only(scm: Any) -> Any:
    """`scm` with every node that is not an ancestor of the target held at 0."""
    from jaxscm._mechanisms import Constant

    # Ancestors are the descendants along reversed edges (the target itself too).
    keep = _descendants(np.asarray(scm.adjacency()).T, scm.target)
    keep[scm.target] = False
    parents, mechs = [], []
    for i, (pa, mech) in enumerate(zip(scm.parents, scm.mechanisms, strict=True)):
        held = not keep[i]
        parents.append(() if held else pa)
        mechs.append(Constant(value=jnp.zeros((), float_dtype(mech))) if held else mech)
    return dataclasses.replace(scm, parents=tuple(parents), mechanisms=tuple(mechs))


def _calibrate(
    mech: Any, x: Any, share_train: np.ndarray, options: LabelOptions
) -> tuple[Any, np.ndarray, np.ndarray]:
    """The fixed-point iteration on one target mechanism (offsets per category)."""

    target = np.asarray(share_train, np.float64)
    k = target.shape[0]
    perm = _class_of_category(mech.f, k)
    offset = np.zeros(k)  # per category; categories without a model class stay 0
    live = (target > 0) & (perm >= 0)
    current = mech
    for _ in range(options.share_steps):
        share = np.asarray(_mean_probabilities(current, x), np.float64)
        share = (
            share[:k] if share.shape[0] >= k else np.pad(share, (0, k - share.shape[0]))
        )
        step = np.where(
            live & (share > 0),
            np.log(np.where(live, target, 1.0)) - np.log(np.maximum(share, 1e-300)),
            0.0,
        )
        offset += np.clip(step, -5.0, 5.0)
        offset -= offset[live].mean() if live.any() else 0.0
        current = dataclasses.replace(mech, f=_shift(mech.f, offset, perm))
    share = np.asarray(_mean_probabilities(current, x), np.float64)[:k]
    return current, offset, share


@jax.jit
def _mean_probabilities(mech: Any, x: Any) -> Any:
    """Mean class probabilities of a target mechanism over rows `x`, compiled once
    per mechanism structure (the offsets change leaves only, and members with the
    same structure share the compile)."""
    return jnp.mean(mech.probabilities(x), axis=0)


def _class_of_category(f: Any, k: int) -> np.ndarray:
    """For each category, the classifier output (before a trailing Select) it is."""
    from jaxscm._features import Pipeline, Select

    steps = f.steps if isinstance(f, Pipeline) else (f,)
    if isinstance(steps[-1], Select):
        return np.asarray(steps[-1].index, np.int64)
    return np.arange(k)


def _shift(f: Any, offset: np.ndarray, perm: np.ndarray) -> Any:
    """`f` with `offset[c]` added to category c's logit (in its core predictor)."""
    import jax.numpy as jnp

    from jaxscm._features import Pipeline, Select
    from jaxscm._linear import Linear
    from jaxscm._mlp import MLP
    from jaxscm._tree import TreeEnsemble

    steps = list(f.steps) if isinstance(f, Pipeline) else [f]
    i = len(steps) - 1
    while i > 0 and isinstance(steps[i], Select):
        i -= 1
    core = steps[i]
    output = getattr(core, "output", None)
    if not isinstance(core, (Linear, MLP, TreeEnsemble)) or output not in (
        "softmax",
        "sigmoid",
    ):
        raise ValueError(
            f"class-share calibration needs a target classifier with softmax or "
            f"sigmoid logits, got {type(core).__name__} (output {output!r}); pass "
            f"LabelOptions(class_share=False)"
        )
    width = 2 if output == "sigmoid" else int(np.max(perm)) + 1
    by_class = np.zeros(max(width, 2))
    for c, j in enumerate(perm):
        if j >= 0:
            by_class[j] = offset[c]
    delta = by_class[1] - by_class[0] if output == "sigmoid" else by_class

    def add(a: Any) -> Any:
        if output == "softmax":
            d = np.zeros(np.shape(a)[-1])
            d[: min(d.shape[0], delta.shape[0])] = delta[: d.shape[0]]
        else:
            d = np.full(np.shape(a), delta)
        return a + jnp.asarray(d, jnp.result_type(a))

    if isinstance(core, Linear):
        core = dataclasses.replace(core, intercept=add(core.intercept))
    elif isinstance(core, MLP):
        core = dataclasses.replace(
            core, biases=(*core.biases[:-1], add(core.biases[-1]))
        )
    else:
        core = dataclasses.replace(core, base=add(core.base))
    steps[i] = core
    return steps[0] if len(steps) == 1 else Pipeline(steps=tuple(steps))
