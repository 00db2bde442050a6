"""fit: DoWhy gcm per DAG, the cheap mechanism choice, the seeded global RNG."""
# ruff: noqa: NPY002 - these tests are about NumPy's legacy global RNG, which DoWhy uses

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from jaxscm import fit, seeded_numpy
from jaxscm.fitting import prepare
from jaxscm.fitting._fit import _COMPARE_ITERS, _HGB_ITERS, _compare


def test_seeded_numpy__restores_the_global_state_even_on_error():
    np.random.seed(123)
    expected = np.random.rand(3)
    np.random.seed(123)
    with seeded_numpy(7):
        inner = np.random.rand(2)
    assert np.array_equal(np.random.rand(3), expected)
    np.random.seed(123)

    def draw_then_fail():
        with seeded_numpy(7):
            np.random.rand(5)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        draw_then_fail()
    assert np.array_equal(np.random.rand(3), expected)
    with seeded_numpy(7):
        assert np.array_equal(np.random.rand(2), inner)
    with seeded_numpy(np.random.default_rng(0)):
        a = np.random.rand()
    with seeded_numpy(np.random.default_rng(0)):
        assert np.random.rand() == a


def _table(n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    a = rng.normal(size=n)
    city = rng.choice(["oslo", "paris", "rome"], n)
    lin = 2 * a + (city == "rome") + 0.3 * rng.normal(size=n)
    wave = np.sin(3 * a) + 0.1 * rng.normal(size=n)
    y = np.where(lin + rng.normal(size=n) > 0, "yes", "no")
    return pd.DataFrame({"a": a, "city": city, "lin": lin, "wave": wave, "y": y})


def _dag() -> nx.DiGraph:
    return nx.DiGraph([("a", "lin"), ("city", "lin"), ("a", "wave"), ("lin", "y")])


def test_fit__fast_choice_is_linear_for_linear_and_hgb_for_nonlinear_nodes():
    from dowhy import gcm

    model = fit(_table(), _dag(), target="y")
    choice = nx.get_node_attributes(model.graph, "jaxscm_mechanism")
    assert choice == {
        "a": "empirical",
        "city": "empirical",
        "lin": "linear",
        "wave": "hgb",
        "y": "linear",
    }
    assert isinstance(model.causal_mechanism("y"), gcm.ClassifierFCM)
    assert isinstance(model.causal_mechanism("lin"), gcm.AdditiveNoiseModel)
    assert isinstance(model.causal_mechanism("a"), gcm.EmpiricalDistribution)
    # categorical parent "city" is a string column for DoWhy, so it gets an encoder
    assert model.causal_mechanism("lin").prediction_model._encoders
    # the comparison stops boosting early; the mechanism fitted on all rows does not
    wave = model.causal_mechanism("wave").prediction_model.sklearn_model
    assert wave.n_iter_ == _HGB_ITERS > _COMPARE_ITERS


def test_compare__gradient_boosting_stops_after_compare_iters(monkeypatch):
    from sklearn.ensemble import HistGradientBoostingRegressor

    seen = []
    fit_hgb = HistGradientBoostingRegressor.fit

    def spy(self, X, y, *args, **kwargs):
        seen.append(self.max_iter)
        return fit_hgb(self, X, y, *args, **kwargs)

    monkeypatch.setattr(HistGradientBoostingRegressor, "fit", spy)
    table = prepare(_table(), "y")
    cols = list(table.columns)
    index = {c.name: j for j, c in enumerate(cols)}
    choice = _compare(cols[index["wave"]], table.codes, [index["a"]], cols, 0)
    assert choice == "hgb"
    assert seen == [_COMPARE_ITERS]


def test_fit__same_random_state_same_samples_and_global_rng_untouched():
    from dowhy import gcm

    df = _table(300)
    np.random.seed(5)
    before = np.random.get_state()[1].copy()
    m1 = fit(df, _dag(), target="y", seed=3)
    assert np.array_equal(np.random.get_state()[1], before)
    m2 = fit(df, _dag(), target="y", seed=3)
    with seeded_numpy(0):
        s1 = gcm.draw_samples(m1, 50)
    with seeded_numpy(0):
        s2 = gcm.draw_samples(m2, 50)
    pd.testing.assert_frame_equal(s1, s2)


def test_fit__cache_reuses_nodes_with_the_same_parents():
    df = _table(300)
    cache: dict = {}
    m1 = fit(df, _dag(), target="y", cache=cache)
    other = nx.DiGraph([("a", "lin"), ("city", "lin"), ("lin", "wave"), ("lin", "y")])
    m2 = fit(df, other, target="y", cache=cache)
    assert m2.causal_mechanism("lin") is m1.causal_mechanism("lin")
    assert m2.causal_mechanism("wave") is not m1.causal_mechanism("wave")


def test_fit__integer_column_gets_a_discrete_anm():
    from dowhy import gcm

    rng = np.random.default_rng(1)
    a = rng.normal(size=300)
    df = pd.DataFrame(
        {"a": a, "n": np.round(20 * a + 50 + rng.normal(size=300)).astype(int)}
    )
    model = fit(df, nx.DiGraph([("a", "n")]), mechanisms="linear")
    assert type(model.causal_mechanism("n")) is gcm.DiscreteAdditiveNoiseModel


def test_fit__rejects_cycles_unknown_nodes_and_options():
    df = _table(100)
    with pytest.raises(ValueError, match="cycle"):
        fit(df, nx.DiGraph([("a", "lin"), ("lin", "a")]), target="y")
    with pytest.raises(ValueError, match="not columns"):
        fit(df, nx.DiGraph([("a", "zzz")]), target="y")
    with pytest.raises(ValueError, match="mechanisms"):
        fit(df, _dag(), target="y", mechanisms="best")
    with pytest.raises(ValueError, match=r"\(5, 5\) adjacency"):
        fit(df, np.zeros((2, 2)), target="y")


@pytest.mark.slow  # DoWhy's auto-assignment evaluates many models (~10 s here)
def test_fit__auto_delegates_to_dowhy_assignment():
    df = _table(200)[["a", "lin", "y"]]
    model = fit(
        df, nx.DiGraph([("a", "lin"), ("lin", "y")]), target="y", mechanisms="auto"
    )
    assert set(nx.get_node_attributes(model.graph, "jaxscm_mechanism").values()) == {
        "auto"
    }
    assert model.causal_mechanism("lin").prediction_model is not None
