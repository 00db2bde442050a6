"""Deterministic equivalence: distilled `apply` equals DoWhy's `evaluate`.

One case table of `(graph, mechanism_factory, data_fn)`. For each case a small DoWhy
model is fitted, distilled, and the node `y`'s distilled mechanism and DoWhy's
`evaluate` get the same parents (drawn from the distilled SCM, so categorical parents
are realistic codes/labels) and the same noise. Numeric nodes must agree to rtol 1e-5
in float32 (1e-10 under JAX_ENABLE_X64); classifier nodes must give the same class
for the same uniform noise wherever the noise is not within float32 rounding of a
cumulative-probability boundary, and allclose probabilities.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import scipy.stats
from dowhy import gcm
from dowhy.gcm.ml import SklearnClassificationModel, SklearnRegressionModel
from dowhy.gcm.ml.regression import (
    InvertibleExponentialFunction,
    InvertibleLogarithmicFunction,
)
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet, Ridge
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, PolynomialFeatures, StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

import jaxscm
from jaxscm import PARAMETRIC_FAMILIES, Parametric

from . import TEST_FAILURE_RATE

X64 = bool(jax.config.jax_enable_x64)
DTYPE = jnp.float64 if X64 else jnp.float32
RTOL = 1e-10 if X64 else 1e-5
N_FIT, N_EVAL = 240, 400

# --- data: every table has numeric a, b, 3-level c, 9-level c9, and a target y --------


def _base(rng: np.random.Generator) -> pd.DataFrame:
    a = rng.normal(size=N_FIT)
    b = 0.5 * a + rng.normal(size=N_FIT)
    c = rng.choice(["lo", "mid", "hi"], size=N_FIT)
    c9 = rng.choice([f"k{i}" for i in range(9)], size=N_FIT)
    return pd.DataFrame({"a": a, "b": b, "c": c, "c9": c9})


def numeric_y(rng: np.random.Generator) -> pd.DataFrame:
    df = _base(rng)
    shift = (
        df["c"].map({"lo": -1.0, "mid": 0.0, "hi": 2.0})
        + df["c9"].str[1:].astype(float) / 4
    )
    df["y"] = np.sin(df["a"]) + df["a"] * df["b"] + shift + 0.3 * rng.normal(size=N_FIT)
    return df


def positive_y(rng: np.random.Generator) -> pd.DataFrame:
    df = numeric_y(rng)
    df["y"] = np.exp(0.3 * df["y"])
    return df


def log_y(rng: np.random.Generator) -> pd.DataFrame:
    # exp(y) stays far from 0 for every pairing of prediction and residual, so
    # g(f + n) = log(f + n) is defined for the whole evaluation grid
    df = _base(rng)
    df["y"] = np.log(6.0 + df["a"] + 0.5 * df["b"] + 0.2 * rng.normal(size=N_FIT))
    return df


def integer_y(rng: np.random.Generator) -> pd.DataFrame:
    df = numeric_y(rng)
    df["y"] = np.round(2 * df["y"]).astype(int)
    return df


def labels_y(k: int) -> Callable[[np.random.Generator], pd.DataFrame]:
    def make(rng: np.random.Generator) -> pd.DataFrame:
        df = numeric_y(rng)
        edges = np.quantile(df["y"], np.linspace(0, 1, k + 1)[1:-1])
        code = np.digitize(df["y"] + 0.5 * rng.normal(size=N_FIT), edges)
        df["y"] = np.array([f"class_{i}" for i in range(k)])[code]
        return df

    return make


# --- mechanism factories --------------------------------------------------------------


def anm(
    pred: Callable[[], Any], noise: Callable[[], Any] | None = None
) -> Callable[[], Any]:
    return lambda: gcm.AdditiveNoiseModel(pred(), noise() if noise else None)


def pnl(pred: Callable[[], Any], link: Any) -> Callable[[], Any]:
    return lambda: gcm.PostNonlinearModel(pred(), gcm.EmpiricalDistribution(), link())


def discrete(pred: Callable[[], Any]) -> Callable[[], Any]:
    return lambda: gcm.DiscreteAdditiveNoiseModel(pred())


def clf(pred: Callable[[], Any]) -> Callable[[], Any]:
    return lambda: gcm.ClassifierFCM(pred())


ml = gcm.ml
AB, ABC, AC9 = ("a", "b"), ("a", "b", "c"), ("a", "c9")

# (id, parents of y, mechanism factory of y, data_fn). Roots are EmpiricalDistribution.
CASES = [
    ("linear", AB, anm(ml.create_linear_regressor), numeric_y),
    (
        "fixed_linear",
        AB,
        anm(
            lambda: ml.create_linear_regressor_with_given_parameters([1.5, -0.5], 0.25)
        ),
        numeric_y,
    ),
    ("ridge_cv", AB, anm(ml.create_ridge_regressor), numeric_y),
    ("lasso_cv", AB, anm(ml.create_lasso_regressor), numeric_y),
    (
        "elastic_net",
        AB,
        anm(lambda: SklearnRegressionModel(ElasticNet(alpha=0.1))),
        numeric_y,
    ),
    ("polynomial", AB, anm(ml.create_polynom_regressor), numeric_y),
    (
        "scalers_pipeline",
        AB,
        anm(
            lambda: SklearnRegressionModel(
                make_pipeline(
                    StandardScaler(),
                    MinMaxScaler(),
                    PolynomialFeatures(2),
                    Ridge(alpha=0.5),
                )
            )
        ),
        numeric_y,
    ),
    (
        "hgb_regressor",
        AB,
        anm(lambda: ml.create_hist_gradient_boost_regressor(max_iter=15)),
        numeric_y,
    ),
    (
        "random_forest_regressor",
        AB,
        anm(lambda: ml.create_random_forest_regressor(n_estimators=4, max_depth=6)),
        numeric_y,
    ),
    (
        "extra_trees_regressor",
        AB,
        anm(
            lambda: SklearnRegressionModel(
                ExtraTreesRegressor(n_estimators=4, max_depth=6)
            )
        ),
        numeric_y,
    ),
    (
        "decision_tree_regressor",
        AB,
        anm(lambda: SklearnRegressionModel(DecisionTreeRegressor(max_depth=5))),
        numeric_y,
    ),
    (
        "mlp_regressor",
        AB,
        anm(
            lambda: SklearnRegressionModel(
                MLPRegressor(
                    hidden_layer_sizes=(8, 8),
                    activation="tanh",
                    max_iter=150,
                    random_state=0,
                )
            )
        ),
        numeric_y,
    ),
    (
        "scipy_noise",
        AB,
        anm(
            ml.create_linear_regressor, lambda: gcm.ScipyDistribution(scipy.stats.norm)
        ),
        numeric_y,
    ),
    (
        "pnl_exp",
        AB,
        pnl(ml.create_linear_regressor, InvertibleExponentialFunction),
        positive_y,
    ),
    (
        "pnl_log",
        AB,
        pnl(ml.create_linear_regressor, InvertibleLogarithmicFunction),
        log_y,
    ),
    ("discrete_anm", AB, discrete(ml.create_linear_regressor), integer_y),
    ("onehot_parent_linear", ABC, anm(ml.create_linear_regressor), numeric_y),
    (
        "onehot_parent_hgb",
        ABC,
        anm(lambda: ml.create_hist_gradient_boost_regressor(max_iter=10)),
        numeric_y,
    ),
    (
        "catboost_parent_hgb",
        AC9,
        anm(lambda: ml.create_hist_gradient_boost_regressor(max_iter=10)),
        numeric_y,
    ),
    ("logistic_binary", AB, clf(ml.create_logistic_regression_classifier), labels_y(2)),
    (
        "logistic_multiclass",
        ABC,
        clf(ml.create_logistic_regression_classifier),
        labels_y(3),
    ),
    (
        "hgb_classifier_binary",
        AB,
        clf(lambda: ml.create_hist_gradient_boost_classifier(max_iter=10)),
        labels_y(2),
    ),
    (
        "hgb_classifier_multiclass",
        ABC,
        clf(lambda: ml.create_hist_gradient_boost_classifier(max_iter=8)),
        labels_y(3),
    ),
    (
        "random_forest_classifier",
        AC9,
        clf(lambda: ml.create_random_forest_classifier(n_estimators=4, max_depth=6)),
        labels_y(3),
    ),
    (
        "extra_trees_classifier",
        AB,
        clf(
            lambda: SklearnClassificationModel(
                ExtraTreesClassifier(n_estimators=4, max_depth=6)
            )
        ),
        labels_y(2),
    ),
    (
        "decision_tree_classifier",
        ABC,
        clf(lambda: SklearnClassificationModel(DecisionTreeClassifier(max_depth=5))),
        labels_y(4),
    ),
    (
        "mlp_classifier_binary",
        AB,
        clf(
            lambda: SklearnClassificationModel(
                MLPClassifier(hidden_layer_sizes=(8,), max_iter=150, random_state=0)
            )
        ),
        labels_y(2),
    ),
    (
        "mlp_classifier_multiclass",
        ABC,
        clf(
            lambda: SklearnClassificationModel(
                MLPClassifier(
                    hidden_layer_sizes=(8,),
                    activation="relu",
                    max_iter=150,
                    random_state=0,
                )
            )
        ),
        labels_y(3),
    ),
]


def fit_case(
    parents: tuple[str, ...], factory: Callable[[], Any], data_fn: Any, seed: int
):
    """Fits the case's DoWhy model: roots empirical, `y` from the factory."""
    df = data_fn(np.random.default_rng(seed))
    graph = nx.DiGraph([(p, "y") for p in parents])
    if {"a", "b"} <= set(parents):
        graph.add_edge("a", "b")  # b is a non-root: its parents come from the SCM too
    model = gcm.StructuralCausalModel(graph)
    for v in graph.nodes:
        if v != "y" and graph.in_degree(v) == 0:
            model.set_causal_mechanism(v, gcm.EmpiricalDistribution())
        elif v != "y":
            model.set_causal_mechanism(
                v, gcm.AdditiveNoiseModel(ml.create_linear_regressor())
            )
    model.set_causal_mechanism("y", factory())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gcm.fit(model, df[list(graph.nodes)])
    return model


def to_dowhy(values: np.ndarray, column: jaxscm.Column) -> np.ndarray:
    """SCM values of one column as DoWhy sees them (labels for categorical columns)."""
    if column.kind == "categorical":
        return np.asarray(column.categories, dtype=object)[values.astype(int)]
    return values.astype(np.float64)


def compare_node(model: Any, scm: jaxscm.SCM, node: str, seed: int) -> dict[str, float]:
    """Feeds the same parents and noise to both sides; returns the errors seen."""
    i = scm.index(node)
    mech, col = scm.mechanisms[i], scm.columns[i]
    x = np.asarray(jaxscm.sample(jax.random.key(seed), scm, N_EVAL))
    parents = x[:, list(scm.parents[i])]
    noise = mech.sample_noise(jax.random.key(seed + 1), N_EVAL)
    got = np.asarray(mech.apply(jnp.asarray(parents, DTYPE), noise), np.float64)

    pa_dowhy = np.column_stack(
        [to_dowhy(parents[:, k], scm.columns[j]) for k, j in enumerate(scm.parents[i])]
    )
    dmech = model.causal_mechanism(node)
    want = np.asarray(dmech.evaluate(pa_dowhy, np.asarray(noise, np.float64))).ravel()
    if col.kind != "categorical":
        want = want.astype(np.float64)
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL * scale)
        err = np.abs(got - want)
        return {
            "max_abs": float(err.max()),
            "max_rel": float((err / np.maximum(np.abs(want), 1e-12)).max()),
            "max_scaled": float(err.max() / scale),
        }

    # classifier: probabilities first (DoWhy's order is the classifier's classes_)
    classes = [str(c) for c in dmech.classifier_model.classes]
    p_want = np.asarray(dmech.estimate_probabilities(pa_dowhy), np.float64)
    p_got = np.asarray(mech.probabilities(jnp.asarray(parents, DTYPE)), np.float64)
    p_got = p_got[:, [col.categories.index(c) for c in classes]]
    np.testing.assert_allclose(p_got, p_want, rtol=RTOL, atol=RTOL * 0.1)
    # then the class drawn by the same uniform noise
    want_codes = np.array([col.categories.index(str(v)) for v in want], np.float64)
    u = np.asarray(noise, np.float64)
    margin = np.abs(np.cumsum(p_want, axis=1) - u[:, None]).min(axis=1)
    clear = margin > 10 * RTOL
    np.testing.assert_array_equal(got[clear], want_codes[clear])
    assert clear.mean() > 0.95
    return {
        "max_abs": float(np.abs(p_got - p_want).max()),
        "class_mismatch": float((got != want_codes).mean()),
    }


@pytest.mark.parametrize(
    ("parents", "factory", "data_fn"),
    [pytest.param(p, f, d, id=name) for name, p, f, d in CASES],
)
def test_distill__apply_equals_dowhy_evaluate(parents, factory, data_fn):
    model = fit_case(parents, factory, data_fn, seed=0)
    scm = jaxscm.distill(model, dtype=DTYPE)
    assert set(scm.nodes) == set(model.graph.nodes)
    errors = compare_node(model, scm, "y", seed=1)
    assert all(np.isfinite(v) for v in errors.values())


def test_distill__roots_copy_dowhy_data_and_codes():
    model = fit_case(ABC, anm(ml.create_linear_regressor), numeric_y, seed=3)
    scm = jaxscm.distill(model, dtype=DTYPE)
    c = scm.index("c")
    assert scm.columns[c].categories == ("hi", "lo", "mid")
    data = model.causal_mechanism("c").data.ravel()
    codes = np.asarray(scm.mechanisms[c].noise.values)
    np.testing.assert_array_equal(
        np.asarray(scm.columns[c].categories)[codes.astype(int)], data
    )
    a = scm.index("a")
    np.testing.assert_allclose(
        np.asarray(scm.mechanisms[a].noise.values),
        model.causal_mechanism("a").data.ravel(),
        rtol=RTOL,
    )


@pytest.mark.parametrize("family", sorted(PARAMETRIC_FAMILIES))
def test_distill__scipy_root_matches_scipy_distribution(family):
    # Fit scipy's own family to draws from it, distill, and test the distilled sampler
    # against scipy's fitted cdf: this checks the scipy -> numpyro parameter mapping.
    dist = getattr(scipy.stats, family)
    shapes = {"t": (5.0,), "gamma": (2.0,), "lognorm": (0.5,), "beta": (2.0, 3.0)}
    draws = dist.rvs(
        *shapes.get(family, ()),
        loc=0.5,
        scale=2.0,
        size=400,
        random_state=np.random.default_rng(0),
    )
    model = gcm.StructuralCausalModel(nx.DiGraph([("r", "y")]))
    model.set_causal_mechanism("r", gcm.ScipyDistribution(dist))
    model.set_causal_mechanism(
        "y", gcm.AdditiveNoiseModel(ml.create_linear_regressor())
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy's MLE on edge cases
        gcm.fit(model, pd.DataFrame({"r": draws, "y": 2.0 * draws}))
    scm = jaxscm.distill(model, dtype=DTYPE)
    noise = scm.mechanisms[scm.index("r")].noise
    assert isinstance(noise, Parametric)
    assert noise.family == family
    params = model.causal_mechanism("r").parameters
    np.testing.assert_allclose(float(noise.loc), params["loc"], rtol=RTOL)
    np.testing.assert_allclose(float(noise.scale), params["scale"], rtol=RTOL)
    sample = np.asarray(noise.sample(jax.random.key(0), 3000), np.float64)
    frozen = dist(**params)
    assert scipy.stats.kstest(sample, frozen.cdf).pvalue > TEST_FAILURE_RATE
