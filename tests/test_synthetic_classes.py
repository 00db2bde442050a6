"""`synthetic_classes`: the class mix of every fine-tuning step's synthetic rows.

The estimator runs on the shipped offline checkpoint: the generators on the planted
table (65 "no" to 31 "yes" training rows, so their own rows are not balanced), the
SCM path on a small random ensemble passed as ``scm=`` (as in test_estimator). What
a step used is read off the meta-batches the loop builds (the real
`build_meta_batch`, wrapped to keep a copy of its result).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("tabpfn")

from _augment_data import finetune_argv, planted  # noqa: E402
from _finetune_data import TFM, encoded, ensemble, table  # noqa: E402

import finetune._finetune as loop_module  # noqa: E402
from finetune import CausalMixFTClassifier, FinetuneConfig  # noqa: E402
from finetune._class_rows import ClassRows, prefix_codes  # noqa: E402
from finetune._sources import GeneratorSource, fit_generator  # noqa: E402
from finetune.augmenters._mixup import Mixup  # noqa: E402

pytestmark = pytest.mark.torch


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
def planted_rows():
    X, y = planted(128)
    return X[:96], y[:96]


@pytest.fixture(scope="module")
def scm_rows():
    X, y, cols = table(80)
    return X[:60], y[:60], ensemble(cols)


def _meta_batches(monkeypatch):
    """The meta-batches of every step (the loop's own, from the real builder)."""
    seen = []
    real = loop_module.build_meta_batch

    def build(*args, **kw):
        mb = real(*args, **kw)
        seen.append(mb)
        return mb

    monkeypatch.setattr(loop_module, "build_meta_batch", build)
    return seen


def _synthetic_counts(mb, k=2):
    y = np.concatenate(
        [mb.y_context[mb.synthetic_context], mb.y_query[mb.synthetic_query]]
    )
    return np.bincount(y, minlength=k)


def _real(mb):
    return (
        mb.X_context[~mb.synthetic_context],
        mb.y_context[~mb.synthetic_context],
        mb.X_query[~mb.synthetic_query],
        mb.y_query[~mb.synthetic_query],
    )


def _fit(name, planted_rows, scm_rows, **kw):
    if name == "causalmix":
        X, y, ens = scm_rows
        return _clf(augment=name, scm=ens, **kw).fit(X, y)
    X, y = planted_rows
    return _clf(augment=name, **kw).fit(X, y)


# mixup streams fresh rows every step, smote draws one pool, causalmix is the SCM
@pytest.mark.parametrize("name", ["mixup", "smote", "causalmix"])
def test_estimator__balanced_synthetic_rows_in_every_step(
    name, planted_rows, scm_rows, monkeypatch
):
    seen = _meta_batches(monkeypatch)
    # a decaying ratio: the steps ask 22 (18), 16 (13) and 9 (7) rows
    kw = dict(ratio_end=0.2, ratio_schedule="linear")
    clf = _fit(name, planted_rows, scm_rows, synthetic_classes="balanced", **kw)
    assert len(seen) == 3
    for mb, step in zip(seen, clf.steps_, strict=True):
        counts = _synthetic_counts(mb)
        assert counts.sum() == step["n_synthetic"] > 0
        assert abs(int(counts[0]) - int(counts[1])) <= 1, counts
        assert step["synthetic_counts"] == counts.tolist()
    assert clf.augment_info_["synthetic_classes"] == "balanced"
    # only the synthetic rows changed: the same real rows, split alike, and the same
    # evaluation of the pre-trained weights on the real validation rows
    monkeypatch.undo()
    seen_plain = _meta_batches(monkeypatch)
    plain = _fit(name, planted_rows, scm_rows, **kw)
    for a, b in zip(seen, seen_plain, strict=True):
        for x, z in zip(_real(a), _real(b), strict=True):
            np.testing.assert_array_equal(x, z)
    assert plain.history_[0] == {
        **clf.history_[0],
        "seconds": plain.history_[0]["seconds"],
    }
    assert "synthetic_counts" not in plain.steps_[0]
    if name != "causalmix":  # the generators' own rows follow the 2:1 training mix
        own = [_synthetic_counts(mb) for mb in seen_plain]
        assert any(abs(int(c[0]) - int(c[1])) > 1 for c in own), own


@pytest.mark.parametrize(
    ("name", "request_", "share_0"),
    [
        ("mixup", {"no": 1, "yes": 3}, 0.25),
        ("smote", {"yes": 0.2, "no": 0.8}, 0.8),
        ("causalmix", {"c0": 0.0, "c1": 2.0}, 0.0),
    ],
)
def test_estimator__a_share_mapping_sets_every_step_s_mix(
    name, request_, share_0, planted_rows, scm_rows, monkeypatch
):
    seen = _meta_batches(monkeypatch)
    clf = _fit(name, planted_rows, scm_rows, synthetic_classes=request_)
    for mb in seen:
        counts = _synthetic_counts(mb)
        assert abs(counts[0] - share_0 * counts.sum()) < 1, counts
    expected = {str(k): float(v) for k, v in request_.items()}
    assert (
        clf.augment_info_["synthetic_classes"]
        == expected
        == clf.config_.synthetic_classes
    )


def test_estimator__none_is_the_run_without_the_option(scm_rows):
    X, y, ens = scm_rows
    kw = dict(augment="causalmix", scm=ens, max_steps=2, eval_every=1)
    base = _clf(**kw).fit(X, y)
    none = _clf(**kw, synthetic_classes=None).fit(X, y)
    assert [s["loss"] for s in none.steps_] == [s["loss"] for s in base.steps_]
    assert [h["val_roc_auc"] for h in none.history_] == [
        h["val_roc_auc"] for h in base.history_
    ]
    np.testing.assert_array_equal(none.predict_proba(X), base.predict_proba(X))
    assert all("synthetic_counts" not in s for s in none.steps_)
    # checkpoints written before the option existed keep their fingerprint
    assert "synthetic_classes" not in FinetuneConfig().fingerprint()
    assert (
        FinetuneConfig(synthetic_classes="balanced").fingerprint()["synthetic_classes"]
        == "balanced"
    )


def test_estimator__resume_with_another_class_request_is_refused(tmp_path, scm_rows):
    X, y, ens = scm_rows

    def stop_at_2(rec):
        if rec["kind"] == "step" and rec["step"] == 2:
            raise KeyboardInterrupt

    kw = dict(augment="causalmix", scm=ens, max_steps=4, eval_every=2)
    kw.update(checkpoint_every=1, synthetic_classes="balanced")
    full = _clf(**kw).fit(X, y)
    ckpt = str(tmp_path / "ckpt")
    with pytest.raises(KeyboardInterrupt):
        _clf(**kw, checkpoint_dir=ckpt, callback=stop_at_2).fit(X, y)
    for other in (None, {"c0": 1, "c1": 2}):
        with pytest.raises(ValueError, match="belongs to a run with other data"):
            _clf(**{**kw, "synthetic_classes": other}, checkpoint_dir=ckpt).fit(X, y)
    resumed = _clf(**kw, checkpoint_dir=ckpt).fit(X, y)
    assert [s["loss"] for s in resumed.steps_] == [s["loss"] for s in full.steps_]
    assert [s["synthetic_counts"] for s in resumed.steps_] == [[11, 11]] * 4


def test_estimator__save_load_keeps_the_class_request(tmp_path, planted_rows):
    X, y = planted_rows
    clf = _clf(augment="mixup", synthetic_classes={"yes": 2, "no": 1}).fit(X, y)
    path = clf.save(tmp_path / "model")
    meta = json.loads((path / "estimator.json").read_text())
    assert meta["config"]["synthetic_classes"] == {"yes": 2.0, "no": 1.0}
    loaded = CausalMixFTClassifier.load(path)
    assert loaded.get_params()["synthetic_classes"] == {"yes": 2, "no": 1}
    assert loaded.config_ == clf.config_
    assert loaded.augment_info_ == clf.augment_info_
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


class _Refusing(Mixup):
    """mixup that refuses class requests (no registered generator refuses one)."""

    name = "refusing_mixup"
    conditional = "refuse"


def test_generator_source__a_refusing_generator_is_a_clear_error(planted_rows):
    import bridge
    from finetune._encode import TableEncoder

    X, y = planted_rows
    enc = TableEncoder.fit(X, y)
    codes = np.column_stack([enc.transform(X, np.float64), enc.encode_labels(y)])
    frame = bridge.to_frame(codes, enc.columns)
    gen = _Refusing().fit(
        frame.drop(columns=["y"]), frame["y"], columns=enc.columns, seed=0
    )
    kw = dict(max_rows=20, max_steps=2, seed=0)
    Xs, ys = GeneratorSource(gen, enc, **kw).draw(0, 20, np.random.default_rng(0))
    assert Xs.shape == (20, 4)
    with pytest.raises(ValueError, match="refusing_mixup generator cannot draw") as e:
        GeneratorSource(gen, enc, classes="balanced", **kw)
    assert "takes class requests: causalmix, ctgan" in str(e.value)


def test_generator_source__pool_steps_take_their_counts_per_class(planted_rows):
    from finetune._encode import TableEncoder

    X, y = planted_rows
    enc = TableEncoder.fit(X, y)
    Xe, ye = enc.transform(X, np.float64), enc.encode_labels(y)
    gen = fit_generator("smote", None, Xe, ye, enc, seed=0)
    src = GeneratorSource(
        gen, enc, max_rows=31, max_steps=1, seed=0, classes="balanced"
    )
    assert src.pool_rows == 31
    assert np.bincount(src._pool[1]).tolist() == [16, 15]
    Xs, ys = src.draw(0, 31, np.random.default_rng(0))
    assert np.bincount(ys).tolist() == [16, 15]  # the whole pool, reordered
    assert len(np.unique(Xs, axis=0)) == len(np.unique(src._pool[0], axis=0))
    assert src.describe()["synthetic_classes"] == "balanced"


def test_estimator__bad_class_requests_name_the_fix(planted_rows):
    X, y = planted_rows
    with pytest.raises(ValueError, match="names class 'maybe', which is not a train"):
        _clf(augment="mixup", synthetic_classes={"maybe": 1}).fit(X, y)
    with pytest.raises(ValueError, match="gives class 'yes' the share -1"):
        _clf(augment="mixup", synthetic_classes={"yes": -1, "no": 1}).fit(X, y)
    with pytest.raises(ValueError, match="shares sum to 0"):
        _clf(augment="mixup", synthetic_classes={"yes": 0}).fit(X, y)
    with pytest.raises(ValueError, match="'even' is not a class request"):
        _clf(augment="mixup", synthetic_classes="even").fit(X, y)
    with pytest.raises(ValueError, match="augment='none' draws no synthetic rows"):
        _clf(augment="none", synthetic_classes="balanced").fit(X, y)
    with pytest.raises(ValueError, match="use members='pooled'"):
        FinetuneConfig(synthetic_classes="balanced", members="per_step")
    with pytest.raises(ValueError, match="ratio is 0"):
        FinetuneConfig(synthetic_classes="balanced", ratio=0)


def test_prefix_codes__every_prefix_is_within_one_row_of_its_share():
    rng = np.random.default_rng(0)
    for _ in range(20):
        shares = rng.dirichlet(np.ones(rng.integers(2, 6)))
        codes = prefix_codes(shares, 60)
        for m in range(1, 61):
            counts = np.bincount(codes[:m], minlength=len(shares))
            assert np.abs(counts - m * shares).max() < 1


def test_class_rows__resumes_and_redraws_a_short_class():
    import jax

    _, _, _, sel, ens = encoded(80)
    key = jax.random.key(3)
    rows = ClassRows(key, ens, sel, 40, request={"c0": 1, "c1": 3})
    steps = [rows.draw(np.random.default_rng(s), 40) for s in range(3)]
    later = ClassRows(key, ens, sel, 40, request={"c0": 1, "c1": 3}, start=2)
    X2, y2 = later.draw(np.random.default_rng(0), 40)
    np.testing.assert_array_equal(X2, steps[2][0])
    np.testing.assert_array_equal(y2, steps[2][1])
    assert [np.bincount(y, minlength=2).tolist() for _, y in steps] == [[10, 30]] * 3
    assert not np.array_equal(steps[0][0], steps[1][0])
    assert rows.redraws == 0
    # a first pool far too small for the request: the step redraws, still exact
    small = ClassRows(key, ens, sel, 40, request={"c0": 1, "c1": 3})
    small.plan = dataclasses.replace(small.plan, per_member=4)
    X, y = small.draw(np.random.default_rng(0), 25)
    assert small.redraws == 1
    assert np.bincount(y, minlength=2).tolist() == [6, 19]
    assert X.shape == (25, 4)
    assert np.isfinite(X).all()


def _argv(tmp_path, *extra):
    return finetune_argv(tmp_path, "--augment", "mixup", *extra, tfm=TFM)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yes", "--synthetic-classes 'yes': give 'balanced' or label=share"),
        ("yes=-1,no=1", "--synthetic-classes 'yes=-1,no=1'"),
        ("maybe=1", "names class 'maybe', which is not a training class"),
    ],
)
def test_cli_finetune__bad_synthetic_classes_exit_2(tmp_path, capsys, value, message):
    from finetune.cli import main

    assert main(_argv(tmp_path, "--synthetic-classes", value)) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_cli_finetune__synthetic_classes_reach_the_report(tmp_path):
    from finetune.cli import main

    assert main(_argv(tmp_path, "--synthetic-classes", "yes=1,no=1")) == 0
    run = tmp_path / "run"
    assert (
        "synthetic classes {'yes': 1.0, 'no': 1.0}" in (run / "report.md").read_text()
    )
    meta = json.loads((run / "model" / "estimator.json").read_text())
    assert meta["augment_info"]["synthetic_classes"] == {"yes": 1.0, "no": 1.0}
    assert meta["params"]["synthetic_classes"] == {"yes": 1.0, "no": 1.0}
