"""Every generator of `finetune.augmenters` through the estimator and the CLI.

`augment=` takes any name of `names()`: the generator is fitted on the training rows
with the estimator's schema and feeds the loop as one pool or a fresh stream
(`finetune._sources`). The cheap generators run a few steps each on the planted
table (numeric, integer and categorical features); the slow ones (the SCM, CTGAN,
TabDDPM and whatever else is registered) get one slow-marked run each.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("tabpfn")

from _augment_data import finetune_argv, planted  # noqa: E402
from _finetune_data import TFM  # noqa: E402

from finetune import CausalMixFTClassifier  # noqa: E402
from finetune._sources import POOL_CAP, GeneratorSource, pool_size  # noqa: E402
from finetune.augmenters import make, names  # noqa: E402

pytestmark = pytest.mark.torch

CHEAP = ("smote", "mixup", "gaussian_copula", "table_augment", "mixed_model")
# Options of the slow generators, sized for a test (their defaults otherwise).
SLOW_OPTIONS: dict[str, dict] = {
    "ctgan": {"epochs": 20},
    "tabddpm": {"steps": 200, "timesteps": 100},
}


def _clf(**kw):
    base = dict(
        tfm=TFM,
        max_steps=3,
        eval_every=3,
        n_estimators_train=1,
        n_estimators=1,
        random_state=0,
        lr=1e-4,
        ratio=0.5,
    )
    return CausalMixFTClassifier(**{**base, **kw})


@pytest.fixture(scope="module")
def data():
    X, y = planted(128)
    return X[:96], y[:96], X[96:], y[96:]


@pytest.mark.parametrize("name", CHEAP)
def test_estimator__each_cheap_generator_fine_tunes_and_predicts(name, data):
    X, y, Xt, yt = data
    clf = _clf(augment=name).fit(X, y)
    n_train = 72  # 96 rows less the 25 % validation split
    gen = make(name)
    assert clf.augment_info_["generator"] == name
    assert clf.augment_info_["mode"] == ("stream" if gen.streaming else "pool")
    assert [s["n_synthetic"] for s in clf.steps_] == [n_train // 2] * 3
    assert clf.scm_ is None
    assert clf.generator_.name == name
    assert clf.generator_.columns_ == clf.encoder_.columns  # the estimator's schema
    p = clf.predict_proba(Xt)
    assert p.shape == (len(Xt), 2)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
    assert set(clf.predict(Xt)) <= {"no", "yes"}


def _counting(monkeypatch, name):
    """Counts the calls of the generator class's own `sample` (the real one runs)."""
    cls = type(make(name))
    calls = []
    real = cls.sample

    def sample(self, n, **kw):
        calls.append(n)
        return real(self, n, **kw)

    monkeypatch.setattr(cls, "sample", sample)
    return calls


def test_estimator__a_pool_generator_samples_once(monkeypatch, data):
    X, y, _, _ = data
    calls = _counting(monkeypatch, "smote")
    clf = _clf(augment="smote", max_steps=4, eval_every=4).fit(X, y)
    assert calls == [pool_size(36, 4)] == [clf.augment_info_["pool_rows"]]
    assert clf.augment_info_["mode"] == "pool"


def test_estimator__a_streaming_generator_samples_every_step(monkeypatch, data):
    X, y, _, _ = data
    calls = _counting(monkeypatch, "mixup")
    clf = _clf(augment="mixup", max_steps=4, eval_every=4).fit(X, y)
    assert calls == [36] * 4
    assert clf.augment_info_["mode"] == "stream"
    assert clf.augment_info_["pool_rows"] is None


def _source(name, data, **kw):
    from finetune._encode import TableEncoder
    from finetune._sources import fit_generator

    X, y, _, _ = data
    enc = TableEncoder.fit(X, y)
    gen = fit_generator(
        name, None, enc.transform(X, np.float64), enc.encode_labels(y), enc, seed=0
    )
    return GeneratorSource(gen, enc, seed=0, **kw), enc


@pytest.mark.parametrize("name", ["smote", "mixup"])
def test_generator_source__rows_are_encoded_and_a_function_of_the_step(name, data):
    src, enc = _source(name, data, max_rows=30, max_steps=5)
    Xa, ya = src.draw(2, 30, np.random.default_rng([0, 2, 1]))
    Xb, yb = src.draw(2, 30, np.random.default_rng([0, 2, 1]))
    Xc, _ = src.draw(3, 30, np.random.default_rng([0, 3, 1]))
    assert (Xa.dtype, ya.dtype, Xa.shape) == (np.float32, np.int64, (30, 4))
    np.testing.assert_array_equal(Xa, Xb)
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(Xa, Xc)
    cat = enc.categorical_indices
    assert set(np.unique(Xa[:, cat])) <= {0.0, 1.0}  # the encoder's codes
    assert set(ya.tolist()) <= {0, 1}
    X0, y0 = src.draw(4, 0, np.random.default_rng(0))
    assert X0.shape == (0, 4)
    assert y0.shape == (0,)


def test_generator_source__pool_rows_are_distinct_within_a_step(data):
    src, _ = _source("smote", data, max_rows=30, max_steps=2)
    assert src.pool_rows == 60
    X, _ = src.draw(0, 60, np.random.default_rng(1))
    assert len(np.unique(X, axis=0)) == len(np.unique(src._pool[0], axis=0))
    assert pool_size(10, 10**6) == POOL_CAP
    with pytest.raises(ValueError, match="pool_rows=5 is below the 30 rows"):
        _source("smote", data, max_rows=30, max_steps=2, pool_rows=5)


def test_estimator__generator_run_resumes_as_if_never_stopped(tmp_path, data):
    X, y, _, _ = data

    def stop_at_2(rec):
        if rec["kind"] == "step" and rec["step"] == 2:
            raise KeyboardInterrupt

    kw = dict(augment="smote", max_steps=4, eval_every=2, checkpoint_every=1)
    full = _clf(**kw).fit(X, y)
    ckpt = str(tmp_path / "ckpt")
    with pytest.raises(KeyboardInterrupt):
        _clf(**kw, checkpoint_dir=ckpt, callback=stop_at_2).fit(X, y)
    resumed = _clf(**kw, checkpoint_dir=ckpt).fit(X, y)
    assert [s["loss"] for s in resumed.steps_] == [s["loss"] for s in full.steps_]
    for other in ({"augment": "mixup"}, {"augment_options": {"k_neighbors": 2}}):
        with pytest.raises(ValueError, match="belongs to a run with other data"):
            _clf(**{**kw, **other}, checkpoint_dir=ckpt).fit(X, y)


def test_estimator__generator_save_load_keeps_what_made_the_rows(tmp_path, data):
    X, y, Xt, _ = data
    clf = _clf(augment="smote", augment_options={"k_neighbors": 3}).fit(X, y)
    path = clf.save(tmp_path / "model")
    assert "scm.npz" not in {p.name for p in path.iterdir()}
    loaded = CausalMixFTClassifier.load(path)
    assert loaded.augment_info_ == clf.augment_info_
    assert loaded.augment_info_["options"] == {"k_neighbors": 3}
    assert loaded.get_params()["augment_options"] == {"k_neighbors": 3}
    np.testing.assert_array_equal(loaded.predict_proba(Xt), clf.predict_proba(Xt))


def test_estimator__augment_errors_name_the_fix(data):
    X, y, _, _ = data
    with pytest.raises(ValueError, match="augment must be one of none, causalmix.*"):
        _clf(augment="smoote").fit(X, y)
    with pytest.raises(ValueError, match="smote generator has no SCM for valid"):
        _clf(augment="smote", validation="synthetic").fit(X, y)
    with pytest.raises(ValueError, match="no SCM for a synthetic inference"):
        _clf(augment="mixup", inference_context="real+synthetic").fit(X, y)
    with pytest.raises(ValueError, match="members='per_step' picks SCM"):
        _clf(augment="mixup", members="per_step").fit(X, y)
    with pytest.raises(ValueError, match="bad augment_options for the smote"):
        _clf(augment="smote", augment_options={"k": 3}).fit(X, y)
    with pytest.raises(ValueError, match="draws no synthetic rows"):
        _clf(augment="none", augment_options={"k": 3}).fit(X, y)
    with pytest.raises(ValueError, match=r"augment_options \['n_dags'\]"):
        _clf(augment="causalmix", augment_options={"n_dags": 2}).fit(X, y)


def _argv(tmp_path, *extra):
    return finetune_argv(tmp_path, *extra, tfm=TFM)


def test_cli_finetune__augment_smote_end_to_end(tmp_path):
    from finetune.cli import main

    argv = _argv(tmp_path, "--augment", "smote", "--augment-option", "k_neighbors=3")
    assert main(argv) == 0
    run = tmp_path / "run"
    report = (run / "report.md").read_text()
    assert "- augment: smote (pool of " in report
    assert "options {'k_neighbors': 3}" in report
    assert "smote generator fit" in report
    meta = json.loads((run / "model" / "estimator.json").read_text())
    assert meta["params"]["augment"] == "smote"
    assert meta["params"]["augment_options"] == {"k_neighbors": 3}
    assert meta["augment_info"]["mode"] == "pool"
    assert meta["augment_info"]["generator"] == "smote"
    steps = (run / "steps.csv").read_text().splitlines()
    assert len(steps) == 3  # header + 2 steps


def test_cli_finetune__unknown_generator_exits_2_with_the_list(tmp_path, capsys):
    from finetune.cli import main

    with pytest.raises(SystemExit) as exc:
        main(_argv(tmp_path, "--augment", "smoote"))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'smoote'" in err
    assert all(n in err for n in ("none", *names()))
    with pytest.raises(SystemExit) as exc:
        main(_argv(tmp_path, "--augment", "smote", "--augment-option", "k3"))
    assert exc.value.code == 2
    assert "must be key=value" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_cli_finetune__bad_generator_option_exits_2(tmp_path, capsys):
    from finetune.cli import main

    argv = _argv(tmp_path, "--augment", "smote", "--augment-option", "k=3")
    assert main(argv) == 2
    assert "bad augment_options for the smote generator" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in names() if n not in CHEAP])
def test_estimator__each_slow_generator_fine_tunes_and_predicts(name, data):
    X, y, Xt, _ = data
    opts = SLOW_OPTIONS.get(name)
    if name in ("causalmix", "scm_only"):
        from jaxscm import DiscoveryOptions

        opts = {"discovery": DiscoveryOptions(n_bootstrap=2), "n_jobs": 1}
        clf = _clf(augment=name, n_dags=2, augment_options=opts).fit(X, y)
        assert clf.scm_ is not None
        assert clf.generator_ is None
    else:
        clf = _clf(augment=name, augment_options=opts).fit(X, y)
        assert clf.generator_.name == name
        assert clf.augment_info_["mode"] == (
            "stream" if clf.generator_.streaming else "pool"
        )
    assert clf.augment_info_["generator"] == name
    assert [s["n_synthetic"] for s in clf.steps_] == [36] * 3
    assert clf.predict_proba(Xt).shape == (len(Xt), 2)
