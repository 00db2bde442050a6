"""jaxscm.distill: refusals, surrogates, stacking and persistence of distilled SCMs.

Exactness per mechanism type is tested in tests/equivalence/test_deterministic.py.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pandas as pd
import pytest
from dowhy import gcm
from dowhy.gcm.causal_mechanisms import FunctionalCausalModel
from dowhy.gcm.ml.classification import create_knn_classifier
from dowhy.gcm.ml.regression import create_knn_regressor

import jaxscm
from jaxscm import Column, Empirical
from jaxscm.distillation._surrogate import (
    SurrogateFidelityError,
    SurrogateOptions,
    SurrogateWarning,
)

pytestmark = pytest.mark.dowhy
ml = gcm.ml
# The x64 job distills to float64 (the core checks a model with x64-wide inputs).
DTYPE = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32


def distill(model, **kwargs):
    return jaxscm.distill(model, dtype=DTYPE, **kwargs)


@pytest.fixture(scope="module", autouse=True)
def _quiet_dowhy():
    gcm.config.disable_progress_bars()


def _table(n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    c = rng.choice(["lo", "mid", "hi"], size=n)
    b = 0.5 * a + (c == "hi") + 0.3 * rng.normal(size=n)
    y = np.where(a + b + 0.5 * rng.normal(size=n) > 0.5, "yes", "no")
    y = np.where(b < -1.0, "maybe", y)
    return pd.DataFrame({"a": a, "b": b, "c": c, "y": y})


def _model(edges, mechanisms, df=None):
    """A fitted DoWhy SCM over the table's columns: empirical roots, given non-roots."""
    df = _table() if df is None else df
    graph = nx.DiGraph(edges)
    graph.add_nodes_from(df.columns)
    model = gcm.StructuralCausalModel(graph)
    for v in graph.nodes:
        if graph.in_degree(v) == 0:
            model.set_causal_mechanism(v, gcm.EmpiricalDistribution())
        elif v in mechanisms:
            model.set_causal_mechanism(v, mechanisms[v]())
        elif v in ("c", "y"):
            model.set_causal_mechanism(
                v, gcm.ClassifierFCM(ml.create_logistic_regression_classifier())
            )
        else:
            model.set_causal_mechanism(
                v, gcm.AdditiveNoiseModel(ml.create_linear_regressor())
            )
    gcm.fit(model, df[list(graph.nodes)])
    return model


# Small boosted trees: eager (un-jitted) tree evaluation costs a dispatch per level.
def _hgb():
    return gcm.AdditiveNoiseModel(
        ml.create_hist_gradient_boost_regressor(max_iter=4, max_depth=3)
    )


def _hgbc():
    return gcm.ClassifierFCM(
        ml.create_hist_gradient_boost_classifier(max_iter=4, max_depth=3)
    )


class _Halve(FunctionalCausalModel):
    """A user-defined FCM: y = a / 2 (no conversion can know what evaluate does)."""

    def fit(self, X, Y):
        pass

    def draw_noise_samples(self, num_samples):
        return np.zeros((num_samples, 1))

    def evaluate(self, parent_samples, noise_samples):
        return np.asarray(parent_samples, float)[:, :1] / 2

    def clone(self):
        return _Halve()


# --- refusals -------------------------------------------------------------------------


def test_distill__unknown_mechanism_names_node_and_type():
    model = _model([("a", "b")], {"b": _Halve})
    with pytest.raises(NotImplementedError, match=r"node 'b'.*_Halve"):
        distill(model)


def test_distill__unknown_prediction_model_names_node_and_type_and_the_opt_in():
    model = _model(
        [("a", "b")], {"b": lambda: gcm.AdditiveNoiseModel(create_knn_regressor())}
    )
    with pytest.raises(
        NotImplementedError, match=r"node 'b'.*KNeighborsRegressor.*surrogate=True"
    ):
        distill(model)


def test_distill__unknown_noise_is_refused_or_resampled_on_opt_in():
    df = _table()
    model = gcm.StructuralCausalModel(nx.DiGraph([("a", "b")]))
    model.set_causal_mechanism("a", gcm.BayesianGaussianMixtureDistribution())
    model.set_causal_mechanism(
        "b", gcm.AdditiveNoiseModel(ml.create_linear_regressor())
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=Warning)  # sklearn's GMM convergence
        gcm.fit(model, df[["a", "b"]])
    with pytest.raises(NotImplementedError, match=r"node 'a'.*BayesianGaussianMixture"):
        distill(model)
    state = np.random.get_state()  # noqa: NPY002
    with pytest.warns(SurrogateWarning, match=r"node 'a'.*Empirical of 500"):
        scm = distill(model, surrogate=SurrogateOptions(n_samples=500))
    # the surrogate seeded DoWhy's global RNG inside a context and gave it back
    assert np.random.get_state()[1].tolist() == state[1].tolist()  # noqa: NPY002
    noise = scm.mechanisms[scm.index("a")].noise
    assert isinstance(noise, Empirical)
    assert noise.values.shape == (500,)
    assert abs(float(noise.values.mean()) - df["a"].mean()) < 0.3


def test_distill__bad_arguments_are_refused():
    model = _model([("a", "b")], {})
    with pytest.raises(ValueError, match=r"nodes without a column \['y'\]"):
        jaxscm.distill(
            model,
            columns=[Column("a"), Column("b"), Column("c", "categorical", ("x",))],
        )
    with pytest.raises(ValueError, match="label 'hi' is not among"):
        jaxscm.distill(
            model,
            columns=[
                Column("a"),
                Column("b"),
                Column("c", "categorical", ("lo", "mid")),
                Column("y", "categorical", ("maybe", "no", "yes")),
            ],
        )
    if not jax.config.jax_enable_x64:
        with pytest.raises(ValueError, match="jax_enable_x64"):
            jaxscm.distill(model, dtype=jnp.float64)
    with pytest.raises(TypeError, match="surrogate must be"):
        jaxscm.distill(model, surrogate="yes")
    with pytest.raises(TypeError, match="DoWhy gcm causal model"):
        jaxscm.distill(object())
    model.graph.add_edge("c", "b")  # changed after fitting
    with pytest.raises(ValueError, match=r"node 'b' was fitted with parents \['a'\]"):
        jaxscm.distill(model)


def test_distill__unfitted_model_is_refused():
    model = gcm.StructuralCausalModel(nx.DiGraph([("a", "b")]))
    model.set_causal_mechanism("a", gcm.EmpiricalDistribution())
    model.set_causal_mechanism(
        "b", gcm.AdditiveNoiseModel(ml.create_linear_regressor())
    )
    with pytest.raises(ValueError, match=r"node '(a|b)'.*(not fitted)"):
        distill(model)


# --- surrogates -----------------------------------------------------------------------


def test_distill__surrogate_reports_fidelity_and_matches_the_model():
    model = _model(
        [("a", "b"), ("c", "b")],
        {
            "b": lambda: gcm.AdditiveNoiseModel(create_knn_regressor(n_neighbors=10)),
        },
    )
    options = SurrogateOptions(
        min_fidelity=0.8, n_samples=1200, steps=600, hidden=(32, 32)
    )
    with pytest.warns(
        SurrogateWarning, match=r"node 'b'.*KNeighborsRegressor.*R\^2 0\.9"
    ):
        scm = distill(model, surrogate=options)
    # fresh inputs: the surrogate follows the k-NN regressor (categorical parent too)
    i = scm.index("b")
    x = np.asarray(jaxscm.sample(jax.random.key(5), scm, 300))[:, list(scm.parents[i])]
    labels = np.asarray(scm.columns[scm.index("c")].categories, object)
    order = [scm.nodes[j] for j in scm.parents[i]]
    x_dowhy = np.column_stack(
        [
            labels[x[:, k].astype(int)] if name == "c" else x[:, k]
            for k, name in enumerate(order)
        ]
    )
    want = model.causal_mechanism("b").prediction_model.predict(x_dowhy).ravel()
    got = np.asarray(scm.mechanisms[i].f(jnp.asarray(x)))
    r2 = 1 - np.sum((got - want) ** 2) / np.sum((want - want.mean()) ** 2)
    assert r2 > 0.8


def test_distill__surrogate_below_threshold_is_refused_with_its_fidelity():
    model = _model(
        [("a", "y"), ("b", "y")],
        {
            "y": lambda: gcm.ClassifierFCM(create_knn_classifier(n_neighbors=5)),
        },
    )
    options = SurrogateOptions(min_fidelity=0.999, n_samples=400, steps=2, hidden=(4,))
    with pytest.raises(
        SurrogateFidelityError, match=r"node 'y'.*class agreement"
    ) as err:
        distill(model, surrogate=options)
    assert 0.0 <= err.value.fidelity < 0.999


# --- columns, stacking, persistence ---------------------------------------------------


def test_distill__category_order_of_the_columns_is_respected():
    model = _model([("a", "y"), ("c", "y")], {})
    cols = [
        Column("a"),
        Column("b"),
        Column("c", "categorical", ("mid", "lo", "hi", "unseen")),
        Column("y", "categorical", ("yes", "no", "maybe"), is_target=True),
    ]
    scm = distill(model, columns=cols)
    assert scm.columns[scm.index("y")] == cols[3]
    i = scm.index("y")
    x = np.asarray(jaxscm.sample(jax.random.key(0), scm, 200))
    pa = x[:, list(scm.parents[i])]
    c_labels = np.asarray(cols[2].categories, object)
    x_dowhy = np.column_stack([pa[:, 0], c_labels[pa[:, 1].astype(int)]])
    mech = model.causal_mechanism("y")
    want = mech.estimate_probabilities(x_dowhy)  # sklearn's sorted order
    got = np.asarray(scm.mechanisms[i].probabilities(jnp.asarray(pa)))
    perm = [cols[3].categories.index(str(k)) for k in mech.classifier_model.classes]
    np.testing.assert_allclose(got[:, perm], want, rtol=1e-5, atol=1e-6)
    assert set(np.unique(x[:, scm.index("c")])) <= {0.0, 1.0, 2.0}  # never "unseen"


def _members():
    return [
        _model([("a", "b"), ("b", "y"), ("c", "y")], {}),
        _model([("b", "a"), ("a", "y"), ("c", "b")], {"a": _hgb, "y": _hgbc}),
        _model([("y", "a"), ("c", "y"), ("a", "b"), ("c", "b")], {"b": _hgb}),
        _model(
            [("c", "a"), ("a", "b"), ("b", "y"), ("a", "y")], {"a": _hgb, "y": _hgbc}
        ),
    ]


@pytest.mark.slow  # four DAGs with boosted trees; the two group tests below are quick
def test_distill__stack_of_distilled_dags_equals_each_member():
    scms = [distill(m) for m in _members()]
    first = scms[0]
    ens = jaxscm.stack(scms, columns=[first.columns[first.index(v)] for v in "abcy"])
    assert ens.nodes == ("a", "b", "c", "y")
    noise = jaxscm.sample_noise(jax.random.key(3), ens, 300)
    x = jax.jit(jaxscm.propagate)(ens, noise)
    for b, scm in enumerate(scms):
        idx = [ens.nodes.index(name) for name in scm.nodes]
        want = jaxscm.propagate(scm, noise[b][:, idx])
        np.testing.assert_allclose(
            np.asarray(x[b][:, idx]), np.asarray(want), rtol=1e-6, atol=1e-6
        )
    assert x.shape == (4, 300, 4)
    assert bool(jnp.isfinite(x).all())


def test_distill__save_load_round_trip_is_exact(tmp_path):
    model = _model(
        [("c", "a"), ("a", "b"), ("c", "b"), ("b", "y"), ("c", "y")],
        {"b": _hgb, "y": _hgbc},
    )
    scm = distill(
        model,
        columns=[
            Column("a"),
            Column("b"),
            Column("c", "categorical", ("mid", "lo", "hi")),
            Column("y", "categorical", ("yes", "no", "maybe"), is_target=True),
        ],
    )
    back = jaxscm.load(jaxscm.save(tmp_path / "distilled", scm))
    assert back.columns == scm.columns
    assert back.parents == scm.parents
    key = jax.random.key(7)
    # one compiled sampler per structure: the loaded model must reuse it
    sample = jax.jit(jaxscm.sample, static_argnums=2)
    np.testing.assert_array_equal(
        np.asarray(sample(key, back, 64)), np.asarray(sample(key, scm, 64))
    )
    other = _model([("b", "a"), ("a", "y"), ("c", "b")], {"a": _hgb})
    ens = jaxscm.stack([scm, distill(other, columns=scm.columns)])
    ens_back = jaxscm.load(jaxscm.save(tmp_path / "ensemble", ens))
    np.testing.assert_array_equal(
        np.asarray(sample(key, ens_back, 32)), np.asarray(sample(key, ens, 32))
    )


def test_stack__encoded_and_plain_predictors_share_one_group():
    # Same node order (c first); b reads a alone in one member and (a, one-hot c) in
    # the other, linear in both; y is boosted in both. Canonical forms (`Embed` + the
    # predictor with moved inputs) make each position a single group.
    cols = [
        Column("c", "categorical", ("hi", "lo", "mid")),
        Column("a"),
        Column("b"),
        Column("y", "categorical", ("maybe", "no", "yes")),
    ]
    members = [
        _model([("a", "b"), ("b", "y")], {"y": _hgbc}),
        _model([("a", "b"), ("c", "b"), ("b", "y"), ("c", "y")], {"y": _hgbc}),
    ]
    scms = [distill(m, columns=cols) for m in members]
    assert [s.nodes for s in scms] == [("c", "a", "b", "y")] * 2
    ens = jaxscm.stack(scms)
    assert [len(g) for g in ens.groups] == [1, 1, 1, 1]
    noise = jaxscm.sample_noise(jax.random.key(0), ens, 200)
    x = jax.jit(jaxscm.propagate)(ens, noise)
    for b, scm in enumerate(scms):
        np.testing.assert_allclose(
            np.asarray(x[b]),
            np.asarray(jaxscm.propagate(scm, noise[b])),
            rtol=1e-6,
            atol=1e-6,
        )


def test_stack__classifiers_with_different_class_counts_share_one_group():
    # Position 1 holds c (3 categories, softmax) in one member and the binary y
    # (sigmoid) in the other; position 2 the reverse, with encoded parents.
    df = _table().assign(y=lambda t: np.where(t["y"] == "yes", "yes", "no"))[
        ["a", "c", "y"]
    ]
    cols = [
        Column("a"),
        Column("c", "categorical", ("hi", "lo", "mid")),
        Column("y", "categorical", ("no", "yes")),
    ]
    members = [
        _model([("a", "c"), ("c", "y"), ("a", "y")], {}, df=df),
        _model([("a", "y"), ("y", "c"), ("a", "c")], {}, df=df),
    ]
    scms = [distill(m, columns=cols) for m in members]
    assert [s.nodes for s in scms] == [("a", "c", "y"), ("a", "y", "c")]
    ens = jaxscm.stack(scms)
    assert [len(g) for g in ens.groups] == [1, 1, 1]
    noise = jaxscm.sample_noise(jax.random.key(1), ens, 400)
    x = np.asarray(jax.jit(jaxscm.propagate)(ens, noise))
    for b, scm in enumerate(scms):
        idx = [ens.nodes.index(name) for name in scm.nodes]
        want = np.asarray(jaxscm.propagate(scm, noise[b][:, idx]))
        np.testing.assert_allclose(x[b][:, idx], want, rtol=1e-6, atol=1e-6)
