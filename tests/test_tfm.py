"""finetune.load_tfm: default checkpoint, local files, published names offline."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from finetune import _tfm
from finetune._tfm import DEFAULT_CHECKPOINT, WeightsUnavailableError, load_tfm


@pytest.fixture
def no_network(monkeypatch):
    """Any connection attempt fails the test (and is recorded)."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


@pytest.mark.parametrize(
    "name", ["v2", "v2.5", "tabpfn-v3.5-fast-20260909.safetensors"]
)
def test_load_tfm__offline_name_fails_fast_without_lock_files(
    name, tmp_path, monkeypatch, no_network
):
    cache = tmp_path / "cache"
    monkeypatch.setenv("TABPFN_MODEL_CACHE_DIR", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match="HF_HUB_OFFLINE") as info:
        load_tfm(name)
    assert time.perf_counter() - t0 < 1.0
    assert "load_tfm(path)" in str(info.value)  # says how to supply weights
    assert not cache.exists()  # tabpfn never ran: no cache dir, no lock files
    assert no_network == []


def test_load_tfm__unreachable_hub_fails_fast(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("TABPFN_MODEL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    t0 = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match="unreachable"):
        load_tfm("v2")
    assert time.perf_counter() - t0 < 1.0
    assert len(no_network) == 1
    assert not list(tmp_path.rglob("*.lock"))


def test_load_tfm__missing_path_and_unknown_name(tmp_path):
    with pytest.raises(FileNotFoundError, match="typo.ckpt"):
        load_tfm(tmp_path / "typo.ckpt")
    assert list(tmp_path.iterdir()) == []  # no lock file next to it
    with pytest.raises(ValueError, match="published names"):
        load_tfm("not-a-model")


def test_published_names__match_tabpfn():
    from tabpfn.constants import ModelVersion
    from tabpfn.model_loading import ModelType, _get_model_source, get_cache_dir

    for version in ModelVersion:
        source = _get_model_source(version, ModelType.CLASSIFIER)
        assert _tfm.DEFAULT_FILES[version.value] == source.default_filename
        for filename in source.filenames:
            assert _tfm._published(filename) == (version.value, filename)
    assert _tfm.tabpfn_cache_dir() == get_cache_dir()


def test_load_tfm__pickled_checkpoint_with_code_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": _Evil()}, path)
    with pytest.raises(ValueError, match="weights_only"):
        load_tfm(path)


class _Evil:
    def __reduce__(self):
        return (print, ("unpickled!",))


@pytest.fixture(scope="module")
def credit_g_split():
    from benchmarks.datasets import make_split

    return make_split("credit-g", 128, seed=0)


def test_default_checkpoint__loads_in_tabpfn_and_beats_chance(credit_g_split):
    from sklearn.metrics import roc_auc_score
    from tabpfn import TabPFNClassifier

    s = credit_g_split
    assert DEFAULT_CHECKPOINT.stat().st_size <= 10 * 2**20
    clf = TabPFNClassifier(
        model_path=str(DEFAULT_CHECKPOINT), device="cpu", n_estimators=2, random_state=0
    )
    # credit-g holds string categorical columns (pandas category dtype)
    assert (s.X_train.dtypes == "category").any()
    clf.fit(s.X_train, s.y_train)
    X_te, y_te = s.X_test.iloc[:300], s.y_test.iloc[:300]
    proba = clf.predict_proba(X_te)
    auc = roc_auc_score(y_te == clf.classes_[1], proba[:, 1])
    assert auc > 0.6


def test_load_tfm__default_is_a_tabpfn_classifier_on_the_shipped_file():
    from tabpfn import TabPFNClassifier

    clf = load_tfm(n_estimators=2)
    assert isinstance(clf, TabPFNClassifier)
    assert clf.model_path == str(DEFAULT_CHECKPOINT)
    assert clf.device == "cpu"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    y = (x[:, 0] + 0.3 * rng.normal(size=60) > 0).astype(int)
    proba = clf.fit(x[:40], y[:40]).predict_proba(x[40:])
    assert proba.shape == (20, 2)


def test_load_tfm__local_plain_ckpt_is_accepted(tmp_path):
    torch = pytest.importorskip("torch")
    from tabpfn.checkpoint import Checkpoint

    ckpt = Checkpoint(DEFAULT_CHECKPOINT).load()
    path = tmp_path / "copy.ckpt"
    torch.save(ckpt, path)  # the legacy pickled-dict format of published weights
    clf = load_tfm(path, n_estimators=1)
    assert clf.model_path == str(path)
    x = np.arange(40, dtype=float).reshape(20, 2)
    y = (x[:, 0] > 19).astype(int)
    assert clf.fit(x, y).predict_proba(x).shape == (20, 2)


def test_load_tfm__shipped_checkpoints_load_by_name_offline(
    tmp_path, monkeypatch, no_network
):
    from tabpfn.checkpoint import Checkpoint

    monkeypatch.setenv("TABPFN_MODEL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = sorted(p.name for p in _tfm.CHECKPOINT_DIR.iterdir())
    assert "causalmixft-prior-v3.5-tiny" in _tfm.SHIPPED_CHECKPOINTS
    for name, path in _tfm.SHIPPED_CHECKPOINTS.items():
        t0 = time.perf_counter()
        clf = load_tfm(name, n_estimators=1)
        Checkpoint(path).load()  # the weights themselves, as tabpfn reads them
        assert time.perf_counter() - t0 < 1.0
        assert clf.model_path == str(path)
    assert no_network == []
    assert not (tmp_path / "cache").exists()
    assert sorted(p.name for p in _tfm.CHECKPOINT_DIR.iterdir()) == before  # no locks


def test_default_checkpoint__wide_table_with_20_level_categoricals():
    import pandas as pd

    rng = np.random.default_rng(0)
    n, n_num, n_cat = 160, 80, 20
    num = rng.normal(size=(n, n_num))
    levels = [f"level_{i}" for i in range(20)]
    codes = rng.integers(0, 20, size=(n, n_cat))
    frame = pd.DataFrame(num, columns=[f"x{i}" for i in range(n_num)])
    for j in range(n_cat):
        frame[f"c{j}"] = pd.Categorical.from_codes(codes[:, j], categories=levels)
    assert frame.shape[1] == 100
    logit = num[:, 0] + num[:, 1] + (codes[:, 0] < 10) - 0.5
    y = (logit + 0.5 * rng.normal(size=n) > 0).astype(int)
    clf = load_tfm(n_estimators=2, random_state=0)
    proba = clf.fit(frame.iloc[:120], y[:120]).predict_proba(frame.iloc[120:])
    assert proba.shape == (40, 2)
    assert np.isfinite(proba).all()
    assert ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
