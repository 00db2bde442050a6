"""The target's mechanism in fit_scm: widened parents, logistic_cv, class share."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import jaxscm
from jaxscm import SCM, Classifier, Column, Linear, Root, gaussian
from jaxscm._dags import _find_cycle
from jaxscm._features import Pipeline, Select
from jaxscm.fitting import LabelOptions
from jaxscm.fitting._label import calibrate_shares, logistic_cv, widen_parents


def test_widen_parents__acyclic_other_nodes_unchanged_forbidden_respected():
    key = jax.random.key(0)
    d, t = 7, 3
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.5, (d, d))
    np.fill_diagonal(p, 0)
    dags = np.asarray(jaxscm.sample_dags(key, p, 20))
    forbidden = np.zeros((d, d), bool)
    forbidden[5, t] = True
    for opts in (LabelOptions(), LabelOptions(parents="threshold", threshold=0.6)):
        wide = widen_parents(dags, p, t, opts, forbidden=forbidden)
        others = [j for j in range(d) if j != t]
        assert np.array_equal(wide[:, :, others], dags[:, :, others])
        assert (wide >= dags).all()  # only adds
        for g, w in zip(dags, wide, strict=True):
            assert _find_cycle(w) == []
            added = w[:, t] & ~g[:, t]
            assert not added[5] or g[5, t]
            if opts.parents == "all":
                # every non-descendant but the forbidden one is a parent
                desc = np.zeros(d, bool)
                frontier = [t]
                while frontier:
                    nxt = np.flatnonzero(g[frontier].any(0) & ~desc)
                    desc[nxt] = True
                    frontier = list(nxt)
                want = ~desc
                want[t] = False
                want[5] = g[5, t]
                assert np.array_equal(w[:, t], want | g[:, t])
            else:
                assert not (added & ((p[:, t] + p[t, :]) < 0.6)).any()
    off = widen_parents(dags, p, t, LabelOptions.off())
    assert np.array_equal(off, dags)


def test_label_options__validated_and_json():
    with pytest.raises(ValueError, match="parents must be one of"):
        LabelOptions(parents="some")
    with pytest.raises(ValueError, match="classifier must be one of"):
        LabelOptions(classifier="svm")
    assert LabelOptions.off().to_json()["parents"] == "discovered"
    assert jaxscm.LabelOptions is LabelOptions


def test_logistic_cv__picks_small_C_on_noise_and_large_on_signal():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(128, 20))
    noise_y = rng.integers(0, 2, 128)
    _, c_noise = logistic_cv(X, noise_y, 0)
    signal_y = (X[:, 0] * 3 + 0.3 * rng.normal(size=128) > 0).astype(int)
    _, c_signal = logistic_cv(X, signal_y, 0)
    assert c_noise < c_signal


def _planted(k_out: int = 3):
    """x ~ N(0, 1), y | x softmax with skewed intercepts; Select reorders classes."""
    coef = jnp.array([[1.0, -0.5, 0.2]])[:, :k_out]
    lin = Linear(
        coef=coef, intercept=jnp.array([2.0, 0.0, -1.0])[:k_out], output="softmax"
    )
    f = Pipeline(steps=(lin, Select(index=(2, 0, 1)[:k_out] if k_out == 3 else (1, 0))))
    cats = ("a", "b", "c")[:k_out]
    return SCM(
        mechanisms=(Root(gaussian()), Classifier(f=f)),
        columns=(Column("x"), Column("y", "categorical", cats, is_target=True)),
        parents=((), (0,)),
    )


@pytest.mark.parametrize("k_out", [2, 3])
def test_calibrate_shares__planted_share_reached_and_round_trips(k_out, tmp_path):
    scm = _planted(k_out)
    want = np.array([0.2, 0.5, 0.3])[:k_out]
    want = want / want.sum()
    opts = LabelOptions()
    (cal,), offsets, share = calibrate_shares([scm], want, jax.random.key(0), opts)
    assert offsets.shape == (1, k_out)
    np.testing.assert_allclose(share[0], want, atol=2e-3)
    # fresh draws: within sampling error of 100k rows plus the 4096-row estimate
    y = np.asarray(jaxscm.sample(jax.random.key(9), cal, 100_000))[:, 1]
    got = np.bincount(y.astype(int), minlength=k_out) / y.shape[0]
    np.testing.assert_allclose(got, want, rtol=0.05)
    before = np.asarray(jaxscm.sample(jax.random.key(9), scm, 100_000))[:, 1]
    assert (
        np.abs(np.bincount(before.astype(int), minlength=k_out) / 1e5 - want).max()
        > 0.05
    )
    jaxscm.save(tmp_path / "m.npz", cal)
    back = jaxscm.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(
        np.asarray(jaxscm.sample(jax.random.key(3), back, 500)),
        np.asarray(jaxscm.sample(jax.random.key(3), cal, 500)),
    )


def test_calibrate_shares__holds_non_ancestors_and_keeps_the_parents_bit_for_bit(
    monkeypatch,
):
    import dataclasses

    from jaxscm.fitting import _label

    base = _planted(3)
    # z <- x after the target and w, a root not upstream of it: neither is an
    # ancestor of y, so the calibration's draw holds both at a constant.
    scm = dataclasses.replace(
        base,
        mechanisms=(
            *base.mechanisms,
            jaxscm.Additive(f=Linear(jnp.ones((1,)), jnp.zeros(())), noise=gaussian()),
            Root(gaussian()),
        ),
        columns=(*base.columns, Column("z"), Column("w")),
        parents=(*base.parents, (0,), ()),
    )
    held = _label._ancestors_only(scm)
    assert [type(m).__name__ for m in held.mechanisms] == [
        "Root",
        "Constant",
        "Constant",
        "Constant",
    ]
    key = jax.random.key(4)
    full_rows = np.asarray(jaxscm.sample(key, jaxscm.stack([scm]), 300))
    held_rows = np.asarray(jaxscm.sample(key, jaxscm.stack([held]), 300))
    np.testing.assert_array_equal(held_rows[..., 0], full_rows[..., 0])
    assert (held_rows[..., 1:] == 0).all()

    want = np.array([0.2, 0.5, 0.3])
    got = calibrate_shares([scm], want, key, LabelOptions())
    monkeypatch.setattr(_label, "_ancestors_only", lambda s: s)
    ref = calibrate_shares([scm], want, key, LabelOptions())
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_array_equal(got[2], ref[2])


def test_calibrate_shares__refuses_probability_outputs():
    scm = _planted(3)
    bad = dataclass_replace_f(scm, Linear(jnp.zeros((1, 3)), jnp.ones(3) / 3))
    with pytest.raises(ValueError, match="class_share=False"):
        calibrate_shares([bad], np.ones(3) / 3, jax.random.key(0), LabelOptions())


def dataclass_replace_f(scm: SCM, f) -> SCM:
    import dataclasses

    mechs = (scm.mechanisms[0], dataclasses.replace(scm.mechanisms[1], f=f))
    return dataclasses.replace(scm, mechanisms=mechs)


def _skewed(n: int = 150) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    a, b, c = rng.normal(size=(3, n))
    y = np.where(a + b - c + rng.normal(size=n) > 2.0, "rare", "common")
    return pd.DataFrame({"a": a, "b": b, "c": c, "y": y})


@pytest.mark.slow
def test_fit_scm__default_label_widens_calibrates_and_round_trips(tmp_path):
    df = _skewed()
    kw = dict(
        n_dags=3,
        discovery=jaxscm.DiscoveryOptions(n_bootstrap=2),
        progress=False,
        n_jobs=1,
    )
    model = jaxscm.fit_scm(df, "y", **kw)
    info = model.info
    assert info.dags[:, :3, 3].all()  # every feature is a parent of the target
    assert np.array_equal(np.asarray(model.adjacency, bool), info.dags)
    report = info.options["label_report"]
    assert info.options["label"] == LabelOptions().to_json()
    share = (df["y"] == "rare").mean()
    assert report["share_train"][1] == pytest.approx(share)
    np.testing.assert_allclose(
        np.asarray(report["share_synth"])[:, 1], share, atol=0.005
    )
    x = np.asarray(jaxscm.sample(jax.random.key(0), model, 20_000))[..., 3]
    assert abs(x.mean() - share) / share < 0.1
    jaxscm.save_fit(tmp_path / "m", model)
    back = jaxscm.load_fit(tmp_path / "m")
    assert back.info.options == info.options
    np.testing.assert_array_equal(
        np.asarray(jaxscm.sample(jax.random.key(1), back, 100)),
        np.asarray(jaxscm.sample(jax.random.key(1), model, 100)),
    )
    off = jaxscm.fit_scm(df, "y", label=LabelOptions.off(), **kw)
    assert off.info.options["label_report"]["added_edges"] == []
    # the default's graphs are off's (the discovered ones) plus the recorded edges
    discovered = info.dags.copy()
    for b, i, j in report["added_edges"]:
        assert j == 3
        discovered[b, i, j] = False
    assert np.array_equal(discovered, off.info.dags)
    assert off.info.options["label_report"]["share_synth"] is None
