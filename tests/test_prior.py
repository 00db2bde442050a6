"""jaxscm.prior: shapes, class counts, missing cells, determinism."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxscm.prior import PriorConfig, sample_prior

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
