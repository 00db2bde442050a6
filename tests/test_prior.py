"""jaxscm.prior: shapes, class counts, missing cells, determinism."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from jaxscm.prior import PRIOR_V2, PriorConfig, sample_prior

SMALL = PriorConfig(
    n_rows=48,
    n_nodes=8,
    max_features=5,
    max_classes=4,
    n_trees=2,
    tree_depth=2,
    p_missing=0.8,
    max_missing=0.3,
    max_categorical=1.0,
    max_categories=3,
)
B = 24


@pytest.fixture(scope="module")
def batch():
    return jax.jit(sample_prior, static_argnums=(1, 2))(jax.random.key(3), B, SMALL)


def test_sample_prior__shapes_and_dtypes(batch):
    assert batch.x.shape == (B, SMALL.n_rows, SMALL.max_features)
    assert batch.y.shape == (B, SMALL.n_rows)
    assert batch.missing.shape == batch.x.shape
    assert batch.categorical.shape == (B, SMALL.max_features)
    assert batch.n_features.shape == batch.n_classes.shape == (B,)
    assert batch.x.dtype == np.float32
    assert batch.y.dtype == np.int32


def test_sample_prior__every_class_present_and_in_range(batch):
    y, k = np.asarray(batch.y), np.asarray(batch.n_classes)
    assert ((k >= 2) & (k <= SMALL.max_classes)).all()
    assert len(set(k.tolist())) > 1  # both binary and multiclass datasets occur
    for yi, ki in zip(y, k, strict=True):
        assert yi.min() >= 0
        assert yi.max() < ki
        assert len(np.unique(yi)) == ki, "a class without rows"


def test_sample_prior__nan_exactly_where_missing(batch):
    x, m = np.asarray(batch.x), np.asarray(batch.missing)
    assert (np.isnan(x) == m).all()
    assert m.any()  # this config makes missing cells
    assert np.isfinite(x[~m]).all()


def test_sample_prior__padding_and_categorical_codes(batch):
    x, nf = np.asarray(batch.x), np.asarray(batch.n_features)
    cat = np.asarray(batch.categorical)
    assert ((nf >= SMALL.min_features) & (nf <= SMALL.max_features)).all()
    assert cat.any()
    for xi, fi, ci in zip(x, nf, cat, strict=True):
        assert (xi[:, fi:] == 0).all()  # padded columns are constant zero
        assert not ci[fi:].any()
        codes = xi[:, ci]
        codes = codes[~np.isnan(codes)]
        assert (codes == np.round(codes)).all()
        assert ((codes >= 0) & (codes < SMALL.max_categories)).all()


def test_sample_prior__same_key_same_batch_new_key_new_batch(batch):
    f = jax.jit(sample_prior, static_argnums=(1, 2))
    again = f(jax.random.key(3), B, SMALL)
    np.testing.assert_array_equal(np.asarray(again.x), np.asarray(batch.x))
    other = f(jax.random.key(4), B, SMALL)
    assert not np.array_equal(np.asarray(other.y), np.asarray(batch.y))


def test_prior_config__rejects_too_few_nodes():
    with pytest.raises(ValueError, match="n_nodes"):
        PriorConfig(n_nodes=4, max_features=4)


V2_B = 64


@pytest.fixture(scope="module")
def batch_v2():
    return jax.jit(sample_prior, static_argnums=(1, 2))(
        jax.random.key(7), V2_B, PRIOR_V2
    )


def test_prior_v2__shapes_and_feature_counts(batch_v2):
    b, cfg = batch_v2, PRIOR_V2
    assert b.x.shape == (V2_B, cfg.n_rows, 100)
    assert b.y.shape == (V2_B, cfg.n_rows)
    assert b.missing.shape == b.x.shape
    assert b.categorical.shape == (V2_B, 100)
    nf = np.asarray(b.n_features)
    assert ((nf >= cfg.min_features) & (nf <= 100)).all()
    # log-uniform counts: small tables common, wide ones present
    assert (nf <= 16).mean() > 0.4
    assert (nf > 40).any()
    x = np.asarray(b.x)
    for xi, fi in zip(x, nf, strict=True):
        assert (xi[:, fi:] == 0).all()


def test_prior_v2__class_shares_include_rare_minorities(batch_v2):
    y, k = np.asarray(batch_v2.y), np.asarray(batch_v2.n_classes)
    shares = np.array(
        [
            np.bincount(yi, minlength=ki).min() / len(yi)
            for yi, ki in zip(y, k, strict=True)
        ]
    )
    assert (shares * PRIOR_V2.n_rows >= 2).all()  # every class has >= 2 rows
    binary = k == 2
    # binary without imbalance: the smaller bin is >= 0.25 / 1.5 of the rows
    rare = binary & (shares <= PRIOR_V2.max_minority + 1.0 / PRIOR_V2.n_rows)
    regular = binary & (shares >= 0.25 / 1.5 - 1.0 / PRIOR_V2.n_rows)
    assert (rare | regular)[binary].all()
    assert rare.any()
    assert shares[rare].min() >= PRIOR_V2.min_minority - 1.0 / PRIOR_V2.n_rows
    # p_imbalanced = 0.2 of all datasets; binary ones are about half of them
    assert 0.03 <= rare.mean() <= 0.3


def test_prior_v2__missing_cell_rates(batch_v2):
    b = batch_v2
    m, nf = np.asarray(b.missing), np.asarray(b.n_features)
    assert (np.isnan(np.asarray(b.x)) == m).all()
    rates = np.array([mi[:, :fi].mean() for mi, fi in zip(m, nf, strict=True)])
    with_missing = rates > 0
    assert 0.15 <= with_missing.mean() <= 0.6  # p_missing = 0.35
    # per dataset, rate uniform in [0, max_missing] (plus sampling noise)
    assert rates.max() <= PRIOR_V2.max_missing + 0.05
    assert 0.01 <= rates.mean() <= 0.12


def test_prior_v2__categoricals_with_many_levels_and_ordinal_codes(batch_v2):
    b = batch_v2
    x, cat, nf = np.asarray(b.x), np.asarray(b.categorical), np.asarray(b.n_features)
    levels, all_cat = [], 0
    for xi, ci, fi in zip(x, cat, nf, strict=True):
        assert not ci[fi:].any()
        all_cat += int(fi >= 3 and ci[:fi].all())
        for j in np.flatnonzero(ci):
            col = xi[:, j][~np.isnan(xi[:, j])]
            assert (col == np.round(col)).all()
            assert ((col >= 0) & (col < PRIOR_V2.max_categories)).all()
            levels.append(len(np.unique(col)))
    assert max(levels) > 12  # up to 20 levels
    assert min(levels) <= 3
    assert all_cat >= 1  # some tables are all categorical
    # ordinal columns: codes increase with the latent value. Same key, no warps and
    # no missing cells: compare the codes with the numeric column they came from.
    plain = dataclasses.replace(
        PRIOR_V2, p_ordinal=1.0, max_categorical=1.0, p_categorical=1.0, p_missing=0.0
    )
    numeric = dataclasses.replace(plain, p_categorical=0.0)
    f = jax.jit(sample_prior, static_argnums=(1, 2))
    xc = np.asarray(f(jax.random.key(1), 4, plain).x)
    xn = np.asarray(f(jax.random.key(1), 4, numeric).x)
    catc = np.asarray(f(jax.random.key(1), 4, plain).categorical)
    checked = 0
    for i, j in zip(*np.nonzero(catc), strict=True):
        order = np.argsort(xn[i, :, j], kind="stable")
        assert (np.diff(xc[i, order, j]) >= 0).all()
        checked += 1
    assert checked > 0


def test_prior_v2__v1_settings_are_unaffected_by_v2_knobs(batch):
    # v2's draws use their own key: v2 options at their "off" values change nothing
    off = dataclasses.replace(SMALL, min_minority=0.05, max_minority=0.2)
    again = jax.jit(sample_prior, static_argnums=(1, 2))(jax.random.key(3), B, off)
    np.testing.assert_array_equal(np.asarray(again.x), np.asarray(batch.x))
    np.testing.assert_array_equal(np.asarray(again.y), np.asarray(batch.y))


def test_prior_config__rejects_bad_v2_options():
    with pytest.raises(ValueError, match="feature_dist"):
        PriorConfig(feature_dist="normal")
    with pytest.raises(ValueError, match="max_parents"):
        PriorConfig(max_parents=0.5)
    with pytest.raises(ValueError, match="min_minority"):
        PriorConfig(min_minority=0.2, max_minority=0.1)
