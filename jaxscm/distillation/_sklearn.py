"""Exact conversions of fitted sklearn estimators into jaxscm predictors.

Part of the distillation front end (`jaxscm.distillation._distill`): imported only
when `distill` runs, it may import sklearn. Each conversion copies fitted parameters
into a core predictor (`Linear`, `MLP`, `TreeEnsemble`, wrapped in a `Pipeline` with
the feature maps of `jaxscm._features`) that computes what the estimator's `predict`
(regression) or `predict_proba` (classification) computes.

Trees need care to agree on every row, not just on average. sklearn's exact trees
(DecisionTree, RandomForest, ExtraTrees) cast their input to float32 and compare it
with float64 thresholds; HistGradientBoosting compares float64 inputs with float64
thresholds. For a float32 input `x`, `x <= t` holds exactly when `x <= rd32(t)`, with
`rd32` rounding down to float32, so a float32 model stores rounded-down thresholds. A
float64 model keeps the float64 thresholds and, for the exact trees, casts its input
to float32 first (`Cast`), as sklearn does.
"""

from __future__ import annotations

import functools
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxscm._features import Affine, Cast, Pipeline, Polynomial, Standardize
from jaxscm._linear import Linear
from jaxscm._mlp import ACTIVATIONS, MLP
from jaxscm._pytree import to_device
from jaxscm._tree import TreeEnsemble


def _name(est: Any) -> str:
    return f"{type(est).__module__}.{type(est).__qualname__}"


@functools.singledispatch
def sklearn_predictor(est: Any, ctx: Any, classifier: bool) -> Any:
    """The core predictor equivalent to a fitted sklearn estimator.

    Raises:
      NotImplementedError: naming the node and the estimator type, if there is no
        exact conversion.
    """
    raise NotImplementedError(
        f"{ctx.where}: no exact conversion for the sklearn estimator {_name(est)}"
    )


def _need(est: Any, classifier: bool, ctx: Any) -> None:
    is_clf = getattr(est, "_estimator_type", None) == "classifier" or hasattr(
        est, "classes_"
    )
    if classifier and not hasattr(est, "predict_proba"):
        raise NotImplementedError(
            f"{ctx.where}: {_name(est)} gives no class probabilities (predict_proba), "
            f"which a ClassifierFCM needs"
        )
    if not classifier and is_clf:
        raise NotImplementedError(
            f"{ctx.where}: {_name(est)} is a classifier but the node's mechanism is a "
            f"regression (additive-noise) model"
        )


def round_down_f32(t: np.ndarray) -> np.ndarray:
    """The largest float32 values that are <= the float64 values `t`."""
    t = np.asarray(t, np.float64)
    t32 = t.astype(np.float32)
    over = t32.astype(np.float64) > t
    t32[over] = np.nextafter(t32[over], np.float32(-np.inf))
    return t32


# --- linear models ------------------------------------------------------------------


def _linear(est: Any, ctx: Any, classifier: bool) -> Linear:
    _need(est, classifier, ctx)
    coef = np.asarray(est.coef_, np.float64)
    intercept = np.asarray(est.intercept_, np.float64)
    if coef.ndim == 2 and coef.shape[0] == 1 and not classifier:
        coef, intercept = coef[0], intercept.reshape(-1)[0]
    if coef.ndim != 1:
        raise NotImplementedError(
            f"{ctx.where}: {_name(est)} has {coef.shape[0]} outputs; a node needs one"
        )
    return Linear(coef=ctx.array(coef), intercept=ctx.array(np.float64(intercept)))


def _logistic(est: Any, ctx: Any, classifier: bool) -> Linear:
    if not classifier:
        raise NotImplementedError(
            f"{ctx.where}: {_name(est)} is a classifier but the node's mechanism is a "
            f"regression (additive-noise) model"
        )
    coef = np.asarray(est.coef_, np.float64)
    intercept = np.asarray(est.intercept_, np.float64).reshape(-1)
    if len(est.classes_) <= 2:
        # sklearn: p(class 1) = expit(x @ coef[0] + b[0]), columns [1 - p, p].
        return Linear(
            coef=ctx.array(coef[0]), intercept=ctx.array(intercept[0]), output="sigmoid"
        )
    return Linear(
        coef=ctx.array(coef.T), intercept=ctx.array(intercept), output="softmax"
    )


# --- pipelines and preprocessing -----------------------------------------------------


def _pipeline(est: Any, ctx: Any, classifier: bool) -> Any:
    steps: list[Any] = []
    for name, step in est.steps[:-1]:
        if step is None or step == "passthrough":
            continue
        steps.extend(_transform(step, ctx, name))
    last = est.steps[-1][1]
    if last is None or last == "passthrough":
        raise NotImplementedError(f"{ctx.where}: a Pipeline without a final estimator")
    f = sklearn_predictor(last, ctx, classifier)
    steps.extend(f.steps if isinstance(f, Pipeline) else (f,))
    return Pipeline(steps=tuple(steps))


def _transform(step: Any, ctx: Any, name: str) -> list[Any]:
    from sklearn.preprocessing import MinMaxScaler, PolynomialFeatures, StandardScaler

    if isinstance(step, StandardScaler):
        p = int(step.n_features_in_)
        mean = step.mean_ if step.with_mean else np.zeros(p)
        scale = step.scale_ if step.with_std else np.ones(p)
        return [Standardize(mean=ctx.array(mean), scale=ctx.array(scale))]
    if isinstance(step, MinMaxScaler):
        if step.clip:
            raise NotImplementedError(
                f"{ctx.where}: pipeline step {name!r}: MinMaxScaler(clip=True)"
            )
        return [Affine(scale=ctx.array(step.scale_), offset=ctx.array(step.min_))]
    if isinstance(step, PolynomialFeatures):
        powers = tuple(tuple(int(k) for k in row) for row in np.asarray(step.powers_))
        return [Polynomial(powers=powers)]
    raise NotImplementedError(
        f"{ctx.where}: no exact conversion for the pipeline step {name!r} "
        f"({_name(step)})"
    )


# --- MLPs ---------------------------------------------------------------------------


def _mlp(est: Any, ctx: Any, classifier: bool) -> MLP:
    _need(est, classifier, ctx)
    if est.activation not in ACTIVATIONS:
        raise NotImplementedError(f"{ctx.where}: MLP activation {est.activation!r}")
    out = {"identity": "identity", "logistic": "sigmoid", "softmax": "softmax"}.get(
        est.out_activation_
    )
    if out is None or (classifier and out == "identity"):
        raise NotImplementedError(
            f"{ctx.where}: MLP output activation {est.out_activation_!r}"
        )
    if out == "sigmoid" and np.shape(est.coefs_[-1])[1] != 1:
        raise NotImplementedError(f"{ctx.where}: multi-label MLPClassifier")
    if not classifier and np.shape(est.coefs_[-1])[1] != 1:
        raise NotImplementedError(f"{ctx.where}: {_name(est)} has several outputs")
    return MLP(
        weights=tuple(ctx.array(w) for w in est.coefs_),
        biases=tuple(ctx.array(b) for b in est.intercepts_),
        activation=est.activation,
        output=out,
    )


# --- trees --------------------------------------------------------------------------


def _thresholds(t: np.ndarray, ctx: Any) -> Any:
    if jnp.dtype(ctx.dtype) == jnp.float32:
        return to_device(round_down_f32(t))
    return ctx.array(t)


def _pack(
    trees: list[dict[str, np.ndarray]],
    ctx: Any,
    *,
    k: int,
    depth: int,
    base: np.ndarray,
    aggregation: str,
    output: str,
    n_features: int,
) -> TreeEnsemble:
    """Pads per-tree node tables (leaves already self-looping) into one ensemble."""
    m = max(len(t["feature"]) for t in trees)
    n = len(trees)
    feature = np.zeros((n, m), np.int32)
    threshold = np.zeros((n, m), np.float64)
    left = np.tile(np.arange(m, dtype=np.int32), (n, 1))
    right = left.copy()
    missing = np.ones((n, m), bool)
    value = np.zeros((n, m, k), np.float64)
    for i, t in enumerate(trees):
        c = len(t["feature"])
        feature[i, :c] = t["feature"]
        threshold[i, :c] = t["threshold"]
        left[i, :c] = t["left"]
        right[i, :c] = t["right"]
        missing[i, :c] = t["missing_left"]
        value[i, :c] = t["value"]
    return TreeEnsemble(
        feature=to_device(feature),
        threshold=_thresholds(threshold, ctx),
        left=to_device(left),
        right=to_device(right),
        missing_left=to_device(missing),
        value=ctx.array(value),
        base=ctx.array(base),
        depth=int(depth),
        aggregation=aggregation,
        output=output,
        n_features=n_features,
    )


def _sk_tree(tree: Any, value: np.ndarray) -> dict[str, np.ndarray]:
    """One sklearn `Tree` as a node table; leaves (children -1) loop to themselves."""
    own = np.arange(tree.node_count, dtype=np.int32)
    leaf = tree.children_left < 0
    return {
        "feature": np.where(leaf, 0, tree.feature).astype(np.int32),
        "threshold": np.where(leaf, 0.0, tree.threshold),
        "left": np.where(leaf, own, tree.children_left).astype(np.int32),
        "right": np.where(leaf, own, tree.children_right).astype(np.int32),
        "missing_left": np.asarray(
            getattr(tree, "missing_go_to_left", np.ones(tree.node_count)), bool
        ),
        "value": value,
    }


def _forest(est: Any, ctx: Any, classifier: bool) -> Any:
    from sklearn.tree import BaseDecisionTree

    _need(est, classifier, ctx)
    estimators = [est] if isinstance(est, BaseDecisionTree) else list(est.estimators_)
    if int(getattr(est, "n_outputs_", 1)) != 1:
        raise NotImplementedError(f"{ctx.where}: multi-output {_name(est)}")
    trees = []
    for e in estimators:
        tree = e.tree_
        value = np.asarray(tree.value, np.float64)[:, 0, :]  # (nodes, k)
        if classifier:
            # sklearn >= 1.4 stores class fractions; normalise anyway so older fitted
            # trees (counts) give the probabilities predict_proba returns.
            value = value / np.maximum(value.sum(axis=1, keepdims=True), 1e-300)
        trees.append(_sk_tree(tree, value))
    k = trees[0]["value"].shape[1]
    f = _pack(
        trees,
        ctx,
        k=k,
        depth=max(e.tree_.max_depth for e in estimators),
        base=np.zeros(k),
        aggregation="mean",
        output="identity",
        n_features=int(est.n_features_in_),
    )
    if jnp.dtype(ctx.dtype) != jnp.float32:
        return Pipeline(steps=(Cast(dtype="float32"), f))
    return f


def _hgb(est: Any, ctx: Any, classifier: bool) -> TreeEnsemble:
    _need(est, classifier, ctx)
    link = type(est._loss.link).__name__
    if classifier:
        k = int(est.n_trees_per_iteration_)
        output = "sigmoid" if k == 1 else "softmax"
    else:
        if link != "IdentityLink":
            raise NotImplementedError(
                f"{ctx.where}: HistGradientBoostingRegressor with loss {est.loss!r} "
                f"(link {link}); only identity-link losses are converted"
            )
        k, output = 1, "identity"
    trees, depth = [], 0
    for iteration in est._predictors:
        for c, predictor in enumerate(iteration):
            nodes = predictor.nodes
            if np.any(nodes["is_categorical"][~nodes["is_leaf"].astype(bool)]):
                raise NotImplementedError(
                    f"{ctx.where}: {_name(est)} with categorical splits"
                )
            leaf = nodes["is_leaf"].astype(bool)
            own = np.arange(len(nodes), dtype=np.int32)
            value = np.zeros((len(nodes), k))
            value[:, c] = np.where(leaf, nodes["value"], 0.0)
            trees.append(
                {
                    "feature": np.where(leaf, 0, nodes["feature_idx"]).astype(np.int32),
                    "threshold": np.where(leaf, 0.0, nodes["num_threshold"]),
                    "left": np.where(leaf, own, nodes["left"]).astype(np.int32),
                    "right": np.where(leaf, own, nodes["right"]).astype(np.int32),
                    "missing_left": nodes["missing_go_to_left"].astype(bool),
                    "value": value,
                }
            )
            depth = max(depth, int(nodes["depth"].max()))
    base = np.asarray(est._baseline_prediction, np.float64).reshape(-1)
    if not trees:  # no iterations: the baseline alone
        trees = [
            {
                "feature": np.zeros(1, np.int32),
                "threshold": np.zeros(1),
                "left": np.zeros(1, np.int32),
                "right": np.zeros(1, np.int32),
                "missing_left": np.ones(1, bool),
                "value": np.zeros((1, k)),
            }
        ]
    return _pack(
        trees,
        ctx,
        k=k,
        depth=depth,
        base=base,
        aggregation="sum",
        output=output,
        n_features=int(est.n_features_in_),
    )


_registered = False


def register() -> None:
    """Registers the conversions (imports sklearn on first use only)."""
    global _registered
    if _registered:
        return
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LogisticRegression
    from sklearn.linear_model._base import LinearModel
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import Pipeline as SkPipeline
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    sklearn_predictor.register(LinearModel, _linear)
    sklearn_predictor.register(LogisticRegression, _logistic)
    sklearn_predictor.register(SkPipeline, _pipeline)
    sklearn_predictor.register(MLPRegressor, _mlp)
    sklearn_predictor.register(MLPClassifier, _mlp)
    for cls in (
        DecisionTreeRegressor,
        DecisionTreeClassifier,
        RandomForestRegressor,
        RandomForestClassifier,
        ExtraTreesRegressor,
        ExtraTreesClassifier,
    ):
        sklearn_predictor.register(cls, _forest)
    sklearn_predictor.register(HistGradientBoostingRegressor, _hgb)
    sklearn_predictor.register(HistGradientBoostingClassifier, _hgb)
    _registered = True
