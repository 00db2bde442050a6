"""bridge: DLPack hand-off, DataFrame decoding, batch streams and the Parquet writer."""

from __future__ import annotations

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import bridge
import bridge._parquet
import bridge._stream
from bridge._stream import batch_fn
from jaxscm import Column, random_scm, sample, stack

# Compiled and eager float results may differ in the last bit (fused multiply-adds),
# so streams are compared with the jitted sampler.
jit_sample = jax.jit(sample, static_argnums=2)


@pytest.fixture(scope="module")
def scm():
    return random_scm(jax.random.key(3), 6, n_categorical=2, target=True)


# --- to_torch / from_torch ---------------------------------------------------------


@pytest.mark.torch
def test_to_torch__shares_memory_on_cpu():
    x = jnp.arange(12.0, dtype=jnp.float32).reshape(3, 4)
    t = bridge.to_torch(x)
    assert t.data_ptr() == x.unsafe_buffer_pointer()
    assert tuple(t.shape) == (3, 4)
    np.testing.assert_array_equal(t.numpy(), np.asarray(x))


@pytest.mark.torch
def test_from_torch__shares_memory_on_cpu():
    import torch

    t = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    x = bridge.from_torch(t)
    assert x.unsafe_buffer_pointer() == t.data_ptr()
    np.testing.assert_array_equal(np.asarray(x), t.numpy())


@pytest.mark.torch
def test_to_torch__refuses_key_arrays(key):
    with pytest.raises(TypeError, match="key"):
        bridge.to_torch(key)


def test_bridge__to_frame_and_write_parquet_do_not_import_torch():
    code = (
        "import sys, bridge, jax\n"
        "from jaxscm import random_scm, sample\n"
        "s = random_scm(jax.random.key(0), 3)\n"
        "bridge.to_frame(sample(jax.random.key(1), s, 4), s)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


# --- to_frame ----------------------------------------------------------------------


def test_to_frame__decodes_categories_and_integers():
    cols = (
        Column("a"),
        Column("n", "integer"),
        Column("c", "categorical", ("lo", "mid", "hi")),
    )
    x = np.array([[0.5, 2.0, 2.0], [1.5, 7.0, 0.0], [2.5, np.nan, np.nan]], np.float32)
    df = bridge.to_frame(x, cols)
    assert list(df.columns) == ["a", "n", "c"]
    assert df["a"].dtype == np.float32
    assert str(df["n"].dtype) == "Int64"  # a NaN makes the integer column nullable
    assert df["n"].tolist()[:2] == [2, 7]
    assert df["n"].isna().tolist() == [
        False,
        False,
        True,
    ]
    assert isinstance(df["c"].dtype, pd.CategoricalDtype)
    assert list(df["c"].cat.categories) == ["lo", "mid", "hi"]
    assert df["c"].tolist()[:2] == ["hi", "lo"]
    assert pd.isna(df["c"].iloc[2])
    assert bridge.to_frame(x[:2], cols)["n"].dtype == np.int64


def test_to_frame__from_sampled_model(scm, key):
    x = sample(key, scm, 50)
    df = bridge.to_frame(x, scm)
    assert list(df.columns) == list(scm.nodes)
    for col in scm.columns:
        if col.kind == "categorical":
            assert set(df[col.name].dropna()) <= set(col.categories)
    np.testing.assert_array_equal(df["x0"].to_numpy(), np.asarray(x[:, 0]))


def test_to_frame__rejects_bad_codes_naming_the_column():
    cols = (Column("c", "categorical", ("a", "b")),)
    with pytest.raises(ValueError, match="'c'.*not a category code"):
        bridge.to_frame(np.array([[2.0]]), cols)
    with pytest.raises(ValueError, match="'c'.*not a category code"):
        bridge.to_frame(np.array([[0.5]]), cols)
    with pytest.raises(ValueError, match="'k'.*integer"):
        bridge.to_frame(np.array([[0.5]]), (Column("k", "integer"),))


def test_to_frame__rejects_ensemble_samples_clearly(key):
    ens = stack([random_scm(jax.random.key(i), 3) for i in range(2)])
    x = sample(key, ens, 4)
    with pytest.raises(ValueError, match=r"\(k, n, d\).*x\[b\]"):
        bridge.to_frame(x, ens)
    assert bridge.to_frame(x[1], ens).shape == (4, 3)


# --- stream ------------------------------------------------------------------------


def test_stream__batches_are_fresh_and_reproducible(scm, key):
    batches = list(bridge.stream(key, scm, 16, as_torch=False, n_batches=3))
    assert [b.shape for b in batches] == [(16, 6)] * 3
    assert not np.array_equal(np.asarray(batches[0]), np.asarray(batches[1]))
    for i, b in enumerate(batches):
        want = jit_sample(jax.random.fold_in(key, i), scm, 16)
        np.testing.assert_array_equal(np.asarray(b), np.asarray(want))
    resumed = next(iter(bridge.stream(key, scm, 16, as_torch=False, start=2)))
    np.testing.assert_array_equal(np.asarray(resumed), np.asarray(batches[2]))


def test_stream__compiles_once_for_steps_and_new_parameters(scm, key):
    list(bridge.stream(key, scm, 24, as_torch=False, n_batches=1))  # warm
    before = batch_fn._cache_size()
    list(bridge.stream(key, scm, 24, as_torch=False, n_batches=20))
    # refitted parameters, same structure: a new stream reuses the compiled sampler
    scaled = jax.tree.map(
        lambda a: a * 2 if jnp.issubdtype(a.dtype, jnp.floating) else a, scm
    )
    list(bridge.stream(jax.random.key(9), scaled, 24, as_torch=False, n_batches=5))
    assert batch_fn._cache_size() == before
    list(bridge.stream(key, scm, 25, as_torch=False, n_batches=1))  # new shape compiles
    assert batch_fn._cache_size() == before + 1


def test_stream__ensemble_batches(key):
    ens = stack([random_scm(jax.random.key(i), 4) for i in range(3)])
    b = next(iter(bridge.stream(key, ens, 8, as_torch=False)))
    assert b.shape == (3, 8, 4)


@pytest.mark.torch
def test_stream__yields_torch_tensors(scm, key):
    import torch

    t = next(iter(bridge.stream(key, scm, 8)))
    assert isinstance(t, torch.Tensor)
    assert tuple(t.shape) == (8, 6)
    want = jit_sample(jax.random.fold_in(key, 0), scm, 8)
    np.testing.assert_array_equal(t.numpy(), np.asarray(want))


def test_stream__rejects_bad_arguments(scm, key):
    with pytest.raises(ValueError, match="batch_size"):
        next(iter(bridge.stream(key, scm, 0)))
    assert list(bridge.stream(key, scm, 4, n_batches=0)) == []


# --- labelled rows (the fine-tuning loop's synthetic path) --------------------------


def _labelled_reference(x, index, features, fill, target, n_classes):
    """NumPy: pool the flattened rows, select the columns, keep rows with a class."""
    rows = np.asarray(x).reshape(-1, x.shape[-1])[index]
    X = np.where(features >= 0, rows[:, np.maximum(features, 0)], fill)
    code = rows[:, target]
    keep = np.isfinite(code) & (code >= 0) & (code < n_classes)
    return X[keep].astype(np.float32), code[keep].astype(np.int64)


@pytest.fixture(scope="module")
def three_class_ensemble():
    scms = [
        random_scm(jax.random.key(20 + i), 5, target=True, n_classes=3)
        for i in range(3)
    ]
    return stack(scms, columns=scms[0].columns)


def test_labelled_rows__equal_a_numpy_reference_of_selection_and_pooling(
    three_class_ensemble, key
):
    ens = three_class_ensemble
    t = next(i for i, c in enumerate(ens.columns) if c.is_target)
    others = [i for i in range(5) if i != t]
    # encoder order differs from the SCM's, one feature is left out (filled)
    features = np.array([others[2], -1, others[0], others[3]], np.int64)
    fill = np.array([0.0, 7.5, 0.0, 0.0], np.float32)
    index = np.random.default_rng(0).permutation(3 * 16)
    X, y = bridge._stream.to_host(
        bridge._stream.labelled_rows(
            key, 4, ens, 16, index, features=features, fill=fill, target=t, n_classes=2
        )
    )
    want_X, want_y = _labelled_reference(
        batch_fn(key, 4, ens, 16), index, features, fill, t, 2
    )
    assert (X.dtype, y.dtype) == (np.float32, np.int64)
    assert 0 < len(y) < len(index)  # class 2 is out of range: those rows are dropped
    np.testing.assert_array_equal(X, want_X)
    np.testing.assert_array_equal(y, want_y)
    assert (X[:, 1] == 7.5).all()


def test_labelled_rows__advancing_the_step_does_not_recompile(
    three_class_ensemble, key
):
    ens = three_class_ensemble
    kw = dict(features=np.array([0, 1], np.int64), fill=np.zeros(2, np.float32))
    t = next(i for i, c in enumerate(ens.columns) if c.is_target)
    rng = np.random.default_rng(1)
    bridge._stream.labelled_rows(
        key, 0, ens, 8, rng.permutation(24), target=t, n_classes=3, **kw
    )
    before = bridge._stream.labelled_fn._cache_size()
    outs = [
        bridge._stream.labelled_rows(
            key, s, ens, 8, rng.permutation(24), target=t, n_classes=3, **kw
        )
        for s in range(1, 6)
    ]
    assert bridge._stream.labelled_fn._cache_size() == before
    assert not np.array_equal(np.asarray(outs[0][0]), np.asarray(outs[1][0]))
    bridge._stream.labelled_rows(
        key, 0, ens, 9, rng.permutation(27), target=t, n_classes=3, **kw
    )  # new batch size compiles
    assert bridge._stream.labelled_fn._cache_size() == before + 1


# --- write_parquet -----------------------------------------------------------------


def test_write_parquet__rows_match_the_stream(scm, key, tmp_path):
    path = bridge.write_parquet(tmp_path / "x.parquet", key, scm, 10, chunk=4)
    meta = pq.read_metadata(path)
    assert meta.num_rows == 10
    assert meta.num_row_groups == 3
    table = pq.read_table(path)
    assert table.schema == bridge.arrow_schema(scm.columns)
    want = np.concatenate(
        [np.asarray(b) for b in bridge.stream(key, scm, 4, as_torch=False, n_batches=3)]
    )[:10]
    got = table.to_pandas()
    np.testing.assert_array_equal(got["x0"].to_numpy(), want[:, 0])
    pd.testing.assert_frame_equal(
        got, bridge.to_frame(want, scm), check_categorical=False
    )
    assert list(tmp_path.iterdir()) == [path]


def test_write_parquet__interrupted_write_leaves_nothing(
    scm, key, tmp_path, monkeypatch
):
    target = tmp_path / "x.parquet"
    calls = {"n": 0}
    real = bridge._parquet._table

    def failing(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # what Ctrl-C mid-write looks like
        return real(*args)

    monkeypatch.setattr(bridge._parquet, "_table", failing)
    with pytest.raises(KeyboardInterrupt):
        bridge.write_parquet(target, key, scm, 12, chunk=4)
    assert calls["n"] == 2
    assert list(tmp_path.iterdir()) == []
    # an existing file under the target name survives a failed rewrite untouched
    target.write_bytes(b"old")
    calls["n"] = 0
    with pytest.raises(KeyboardInterrupt):
        bridge.write_parquet(target, key, scm, 12, chunk=4)
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


def test_write_parquet__rejects_bad_input(scm, key, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        bridge.write_parquet(tmp_path / "no" / "x.parquet", key, scm, 4)
    with pytest.raises(ValueError, match="chunk"):
        bridge.write_parquet(tmp_path / "x.parquet", key, scm, 4, chunk=0)
    ens = stack([random_scm(jax.random.key(i), 3) for i in range(2)])
    with pytest.raises(ValueError, match="ensemble"):
        bridge.write_parquet(tmp_path / "x.parquet", key, ens, 4)
    assert list(tmp_path.iterdir()) == []
