"""TabDDPM (`finetune.augmenters` "tabddpm"): the diffusion math by hand, the
generator's interface, and (slow) fidelity on a planted table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("optax")

import jax.numpy as jnp  # noqa: E402

from finetune import augmenters  # noqa: E402
from finetune.augmenters import _tabddpm_diffusion as dif  # noqa: E402
from finetune.augmenters._tabddpm import QuantileNormal  # noqa: E402
from jaxscm import Column, SchemaError  # noqa: E402

TINY = {"steps": 200, "timesteps": 20, "d_layers": (32, 32), "dim_t": 16}


def _f(u: float) -> float:
    # Nichol & Dhariwal's cosine f(u), s = 0.008, written out by hand
    return np.cos((u + 0.008) / 1.008 * np.pi / 2) ** 2


def _table(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.where(rng.random(n) < 0.4, "yes", "no")
    pos = y == "yes"
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n) + 2.0 * pos,
            "b": 0.5 * rng.normal(size=n) - pos,
            "k": rng.integers(0, 200, n) + 100 * pos,
            "c": np.where(rng.random(n) < 0.2 + 0.6 * pos, "p", "q"),
        }
    )
    return X, y


@pytest.fixture(scope="module")
def fitted():
    X, y = _table(120, 0)
    return X, y, augmenters.make("tabddpm", **TINY).fit(X, y, seed=0)


# --- forward processes and losses, against hand-computed cases -------------------


def test_cosine_schedule__alpha_bar_matches_formula():
    s = dif.cosine_schedule(10)
    for t in (0, 3, 8):
        want = _f((t + 1) / 10) / _f(0.0)
        np.testing.assert_allclose(float(s.alpha_bar[t]), want, rtol=1e-5)
    beta3 = 1 - _f(4 / 10) / _f(3 / 10)
    np.testing.assert_allclose(float(s.betas[3]), beta3, rtol=1e-5)
    assert float(s.betas[-1]) == pytest.approx(0.999)  # the clip at the last step
    assert float(s.alpha_bar_prev[0]) == 1.0


def test_gaussian_q__mean_and_variance():
    s = dif.cosine_schedule(10)
    x0 = jnp.array([[1.0, -2.0], [0.5, 3.0]], jnp.float32)
    t = jnp.array([2, 7], jnp.int32)
    mean, var = dif.gaussian_q_mean_var(s, x0, t)
    ab = np.array([_f(3 / 10), _f(8 / 10)]) / _f(0.0)
    np.testing.assert_allclose(mean, np.sqrt(ab)[:, None] * np.asarray(x0), rtol=1e-5)
    np.testing.assert_allclose(var, np.repeat((1 - ab)[:, None], 2, 1), rtol=1e-5)
    noise = jnp.ones_like(x0)
    np.testing.assert_allclose(
        dif.gaussian_q_sample(s, x0, t, noise), mean + np.sqrt(var), rtol=1e-5
    )


def test_multinomial_q__is_alpha_bar_onehot_plus_uniform():
    s = dif.cosine_schedule(10)
    mask = jnp.array([[True, True, False], [True, True, True]])  # K = 2 and 3
    x0 = jnp.array([[1, 0]], jnp.int32)
    t = jnp.array([4], jnp.int32)
    q = np.exp(dif.log_q_xt_x0(s, dif.log_onehot(x0, mask), t, mask))[0]
    ab = _f(5 / 10) / _f(0.0)
    np.testing.assert_allclose(q[0, :2], [(1 - ab) / 2, ab + (1 - ab) / 2], atol=1e-6)
    np.testing.assert_allclose(
        q[1], [ab + (1 - ab) / 3, (1 - ab) / 3, (1 - ab) / 3], rtol=1e-6
    )
    assert q[0, 2] == 0.0  # the padded category has no probability


def _hand_loss(T: int, t: int, x0: int, xt: int, logits: np.ndarray) -> float:
    # one column of K = 2 categories, everything written out from the definitions
    ab = np.array([_f((i + 1) / T) / _f(0.0) for i in range(T)])
    betas = np.minimum(1 - ab / np.concatenate([[1.0], ab[:-1]]), 0.999)
    ab = np.cumprod(1 - betas)
    alpha = 1 - betas[t]
    onehot = np.eye(2)
    step = alpha * onehot[xt] + (1 - alpha) / 2  # q(x_t | x_{t-1} = k), over k
    p0 = np.exp(logits) / np.exp(logits).sum()

    def post(x0_probs: np.ndarray) -> np.ndarray:
        ev = x0_probs if t == 0 else ab[t - 1] * x0_probs + (1 - ab[t - 1]) / 2
        v = step * ev
        return v / v.sum()

    true, model = post(onehot[x0]), post(p0)
    lt = -np.log(model[x0]) if t == 0 else float(np.sum(true * np.log(true / model)))
    qT = ab[T - 1] * onehot[x0] + (1 - ab[T - 1]) / 2
    return T * lt + float(np.sum(qT * np.log(qT / 0.5)))


@pytest.mark.parametrize("t", [0, 3])
def test_multinomial_loss__tiny_hand_case(t):
    T, logits = 10, np.array([0.3, -1.2])
    s = dif.cosine_schedule(T)
    mask = jnp.array([[True, True]])
    got = dif.multinomial_loss(
        s,
        jnp.array([[0]], jnp.int32),
        jnp.array([[1]], jnp.int32),
        jnp.array([t], jnp.int32),
        jnp.asarray(logits, jnp.float32)[None, None, :],
        mask,
    )
    np.testing.assert_allclose(float(got[0]), _hand_loss(T, t, 0, 1, logits), rtol=1e-4)


def test_quantile_normal__matches_sklearn_and_inverse_stays_in_range():
    from sklearn.preprocessing import QuantileTransformer

    rng = np.random.default_rng(0)
    x = np.column_stack([rng.exponential(size=300), rng.integers(0, 4, 300)])
    ours = QuantileNormal(x, 10)
    ref = QuantileTransformer(n_quantiles=10, output_distribution="normal").fit(x)
    np.testing.assert_allclose(ours.transform(x), ref.transform(x), atol=1e-6)
    back = ours.inverse(rng.normal(size=(1000, 2)) * 4)
    assert (back >= x.min(axis=0)).all()
    assert (back <= x.max(axis=0)).all()


# --- the generator ------------------------------------------------------------------


def test_tabddpm__round_trips_columns_dtypes_categories(fitted):
    X, _, gen = fitted
    Xs, ys = gen.sample(60, seed=1)  # 60 rows: one compiled block of 64
    assert list(Xs.columns) == list(X.columns)
    assert len(Xs) == 60
    assert [c.kind for c in gen.columns_] == [
        "numeric",
        "numeric",
        "integer",
        "categorical",
        "categorical",
    ]
    assert pd.api.types.is_float_dtype(Xs["a"])
    assert pd.api.types.is_float_dtype(Xs["b"])
    assert pd.api.types.is_integer_dtype(Xs["k"])
    assert set(Xs["k"]) <= set(X["k"])  # integer columns snap to observed values
    assert list(Xs["c"].cat.categories) == ["p", "q"]
    assert list(ys.cat.categories) == ["no", "yes"]
    for col in ("a", "b"):  # the quantile inverse keeps the observed range
        assert X[col].min() <= Xs[col].min()
        assert Xs[col].max() <= X[col].max()


def test_tabddpm__deterministic_per_seed(fitted):
    X, y, gen = fitted
    again = augmenters.make("tabddpm", **TINY).fit(X, y, seed=0)
    a, b = gen.sample(40, seed=5), again.sample(40, seed=5)
    pd.testing.assert_frame_equal(a[0], b[0])
    pd.testing.assert_series_equal(a[1], b[1])
    np.testing.assert_array_equal(gen.loss_history_, again.loss_history_)
    assert not gen.sample(40, seed=6)[0].equals(a[0])


def test_tabddpm__honours_class_requests(fitted):
    _, _, gen = fitted
    assert gen.conditional == "conditional"
    _, ys = gen.sample(50, seed=2, y="balanced")
    assert ys.value_counts().to_dict() == {"no": 25, "yes": 25}
    _, ys = gen.sample(9, seed=2, y="yes")
    assert set(ys) == {"yes"}


def test_tabddpm__training_loss_decreases(fitted):
    _, _, gen = fitted
    h = gen.loss_history_
    assert gen.n_steps_ == 200
    assert h.shape == (200,)
    assert h[-50:].mean() < 0.8 * h[:50].mean()


def test_tabddpm__time_budget_stops_after_a_chunk():
    X, y = _table(120, 0)
    gen = augmenters.make("tabddpm", time_budget=1e-9, **TINY).fit(X, y, seed=0)
    assert gen.n_steps_ == 100  # one compiled chunk of 100 steps, then the check


def test_tabddpm__refuses_too_many_categories_and_bad_options():
    n = 120
    X = pd.DataFrame({"c": [f"v{i % 60}" for i in range(n)]})
    cols = [
        Column("c", "categorical", tuple(f"v{i}" for i in range(60))),
        Column("y", "categorical", ("0", "1"), is_target=True),
    ]
    with pytest.raises(SchemaError, match=r"column 'c' has 60 categories.*merge"):
        augmenters.make("tabddpm", **TINY).fit(X, [0, 1] * 60, columns=cols)
    with pytest.raises(ValueError, match="invalid option timesteps=1"):
        augmenters.make("tabddpm", timesteps=1)


# --- fidelity (slow) --------------------------------------------------------------


def detection_auc(real: pd.DataFrame, synth: pd.DataFrame, seed: int = 0) -> float:
    """HGB detection AUC (one-hot, 3-fold stratified) of synthetic vs real rows."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from jaxscm._schema import label

    real, synth = real.reset_index(drop=True), synth.reset_index(drop=True)
    for c in real.columns:  # one encoding for both: a generator decodes by schema
        if not (
            pd.api.types.is_numeric_dtype(real[c])
            and pd.api.types.is_numeric_dtype(synth[c])
        ):
            real[c] = [label(v) for v in real[c]]
            synth[c] = [label(v) for v in synth[c]]
    both = pd.concat([real, synth], ignore_index=True)
    X = pd.get_dummies(both, dtype=float).to_numpy()
    z = np.r_[np.zeros(len(real)), np.ones(len(synth))]
    cv = StratifiedKFold(3, shuffle=True, random_state=seed)
    p = cross_val_predict(
        HistGradientBoostingClassifier(random_state=seed),
        X,
        z,
        cv=cv,
        method="predict_proba",
    )[:, 1]
    return float(roc_auc_score(z, p))


DETECTION_CEILING = 0.75


@pytest.mark.slow
def test_tabddpm__planted_table_is_hard_to_detect():
    rng = np.random.default_rng(1)
    n = 400
    y = rng.integers(0, 2, n)
    a = rng.normal(size=n) + 1.5 * y
    X = pd.DataFrame(
        {
            "a": a,
            "b": 0.7 * a + 0.5 * rng.normal(size=n) - y,
            "c": np.where(
                rng.random(n) < 0.25 + 0.5 * y,
                "p",
                np.where(rng.random(n) < 0.5, "q", "r"),
            ),
        }
    )
    gen = augmenters.make("tabddpm").fit(X, y, seed=0)
    Xs, ys = gen.sample(n, seed=1)
    real = X.assign(y=pd.Series(y).astype(str))
    synth = Xs.assign(y=ys.astype(str).to_numpy())
    auc = detection_auc(real, synth)
    assert auc < DETECTION_CEILING, auc
    # the class-conditional structure survives: the mean of `a` by class
    gap = Xs["a"][ys.astype(str) == "1"].mean() - Xs["a"][ys.astype(str) == "0"].mean()
    assert 1.0 < gap < 2.0


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["categorical_only", "numeric_only_dropout"])
def test_tabddpm__one_kind_of_feature(kind):
    rng = np.random.default_rng(0)
    n = 60
    y = rng.integers(0, 2, n)
    if kind == "categorical_only":
        X, extra = pd.DataFrame({"c": np.where(rng.random(n) < 0.5, "p", "q")}), {}
    else:
        X, extra = pd.DataFrame({"a": rng.normal(size=n)}), {"dropout": 0.2}
    gen = augmenters.make("tabddpm", **TINY, **extra).fit(X, y, seed=0)
    Xs, ys = gen.sample(10, seed=0, y=[0, 1] * 5)
    assert list(Xs.columns) == list(X.columns)
    assert ys.tolist() == ["0", "1"] * 5
    if kind == "categorical_only":
        assert set(Xs["c"]) <= {"p", "q"}
    else:
        assert X["a"].min() <= Xs["a"].min()
        assert Xs["a"].max() <= X["a"].max()
