"""The CausalMixFT loop: real steps, mixing, early stopping, determinism, resume."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("tabpfn")

import torch  # noqa: E402
from _finetune_data import TFM, encoded, reference_rows  # noqa: E402

from finetune._config import FinetuneConfig  # noqa: E402
from finetune._encode import Selection  # noqa: E402
from finetune._finetune import finetune  # noqa: E402
from finetune._mixing import SyntheticRows, build_meta_batch, ratio_at  # noqa: E402
from finetune._tabpfn import make_classifier, network_of, query_loss  # noqa: E402

pytestmark = pytest.mark.torch

FAST = dict(n_estimators_train=1, n_estimators=1, eval_every=3, max_steps=3)


@pytest.fixture(scope="module")
def data():
    return encoded(80)


@pytest.fixture(scope="module")
def tfm():
    from finetune._tfm import load_tfm

    return load_tfm(TFM)


def _run(tfm, data, callback=None, **kw):
    X, y, enc, sel, ens = data
    cfg = FinetuneConfig(**{**FAST, **kw})
    return finetune(
        tfm,
        X[:60],
        y[:60],
        config=cfg,
        n_classes=2,
        X_val=X[60:],
        y_val=y[60:],
        scm=ens,
        selection=sel,
        callback=callback,
    )


def _equal(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_finetune__real_steps_change_weights_and_lower_training_loss(tfm, data):
    X, y, *_ = data
    before = network_of(tfm)
    cfg = FinetuneConfig(
        ratio=0.0,
        max_steps=12,
        eval_every=12,
        lr=1e-3,
        warmup_fraction=0.0,
        lr_schedule="constant",
        n_estimators_train=1,
        n_estimators=1,
    )

    def loss(net):
        # the training objective: mean query loss over the run's own meta-batches
        clf = make_classifier(
            net,
            n_estimators=1,
            categorical=[],
            device="cpu",
            seed=cfg.seed,
            batched=True,
        )
        out = []
        with torch.no_grad():
            for step in range(cfg.max_steps):
                mb = build_meta_batch(
                    np.random.default_rng([cfg.seed, step]),
                    X[:60],
                    y[:60],
                    X[:0],
                    y[:0],
                    query_fraction=0.3,
                    placement="both",
                )
                out.append(
                    float(
                        query_loss(
                            clf,
                            mb.X_context,
                            mb.y_context,
                            mb.X_query,
                            mb.y_query,
                            seed=cfg.seed,
                        )
                    )
                )
        return float(np.mean(out))

    net = network_of(tfm)
    trained = {}

    def snap(rec):  # the weights right after the last step, before any restoring
        if rec["kind"] == "step" and rec["step"] == cfg.max_steps:
            trained.update(net.state_dict())

    res = finetune(
        net,
        X[:60],
        y[:60],
        config=cfg,
        n_classes=2,
        X_val=X[60:],
        y_val=y[60:],
        callback=snap,
    )
    assert len(res.steps) == 12
    assert res.stop_reason == "max_steps"
    assert not _equal(before.state_dict(), trained)
    net.module.load_state_dict(trained)
    assert loss(net) < loss(before) - 0.02


def test_finetune__keeps_pretrained_weights_when_nothing_beats_them(tfm, data):
    before = network_of(tfm).state_dict()
    res = _run(tfm, data, ratio=0.0, lr=1e-3, max_steps=6, patience=1, min_delta=10.0)
    assert res.best_step == 0
    assert res.stop_reason == "early_stopping"
    assert [h["step"] for h in res.history] == [0, 3]
    assert _equal(before, res.network.state_dict())


def test_finetune__early_stopping_restores_the_best_evaluation(tfm, data):
    X, y, enc, sel, ens = data
    net = network_of(tfm)
    snapshots = {}

    def snap(rec):
        if rec["kind"] == "eval":
            snapshots[rec["step"]] = net.state_dict()

    cfg = FinetuneConfig(
        **{**FAST, "max_steps": 9, "eval_every": 1},
        lr=3e-3,
        ratio=0.0,
        patience=3,
        warmup_fraction=0.0,
        lr_schedule="constant",
    )
    res = finetune(
        net,
        X[:60],
        y[:60],
        config=cfg,
        n_classes=2,
        X_val=X[60:],
        y_val=y[60:],
        callback=snap,
    )
    scores = [h["val_score"] for h in res.history]
    assert res.best_score == max(scores)
    assert res.history[scores.index(max(scores))]["step"] == res.best_step
    assert _equal(snapshots[res.best_step], net.state_dict())
    if res.stop_reason == "early_stopping":
        assert len(res.history) - 1 - scores.index(max(scores)) == 3


def test_finetune__ratio_zero_with_an_scm_is_bitwise_plain(tfm, data):
    X, y, enc, sel, ens = data
    cfg = FinetuneConfig(**FAST, ratio=0.0, lr=1e-3)
    plain = finetune(
        tfm, X[:60], y[:60], config=cfg, n_classes=2, X_val=X[60:], y_val=y[60:]
    )
    mixed = _run(tfm, data, ratio=0.0, lr=1e-3)
    assert _equal(plain.network.state_dict(), mixed.network.state_dict())
    assert [s["loss"] for s in plain.steps] == [s["loss"] for s in mixed.steps]
    other = _run(tfm, data, ratio=1.0, lr=1e-3)
    assert [s["loss"] for s in other.steps] != [s["loss"] for s in plain.steps]


@pytest.mark.parametrize(
    ("ratio", "use_real"), [(0.5, True), (1.0, True), (1.0, False)]
)
def test_finetune__synthetic_rows_reach_the_meta_batch_with_the_requested_share(
    tfm, data, ratio, use_real
):
    res = _run(tfm, data, ratio=ratio, use_real=use_real, lr=1e-4)
    n_syn = round(ratio * 60)
    for s in res.steps:
        assert s["n_synthetic"] == n_syn
        assert s["n_real"] == (60 if use_real else 0)
        assert s["synthetic_share"] == pytest.approx(n_syn / (n_syn + s["n_real"]))


def test_finetune__resumes_from_checkpoint_as_if_never_stopped(tmp_path, tfm, data):
    full = _run(tfm, data, ratio=1.0, lr=1e-3, max_steps=5, eval_every=2)

    def stop_at_3(rec):
        if rec["kind"] == "step" and rec["step"] == 3:
            raise KeyboardInterrupt

    kw = dict(
        ratio=1.0,
        lr=1e-3,
        max_steps=5,
        eval_every=2,
        checkpoint_dir=str(tmp_path),
        checkpoint_every=2,
    )
    with pytest.raises(KeyboardInterrupt):
        _run(tfm, data, callback=stop_at_3, **kw)
    assert (tmp_path / "state.json").exists()
    resumed = _run(tfm, data, **kw)
    assert [s["loss"] for s in resumed.steps] == [s["loss"] for s in full.steps]
    assert _equal(full.network.state_dict(), resumed.network.state_dict())
    with pytest.raises(ValueError, match="other data or options"):
        _run(tfm, data, **{**kw, "lr": 2e-3})


def test_synthetic_rows__fresh_every_step_from_one_compiled_sampler(data):
    import bridge._stream as stream_mod

    X, y, enc, sel, ens = data
    key = jax.random.key(7)
    src = SyntheticRows(key, ens, sel, 40, members="pooled")
    rng = np.random.default_rng(0)
    a, b = src.draw(rng, 40), src.draw(rng, 40)
    size = stream_mod.batch_fn._cache_size()
    for _ in range(3):
        src.draw(rng, 40)
    assert stream_mod.batch_fn._cache_size() == size
    assert a[0].shape == (40, X.shape[1])
    assert not np.array_equal(a[0], b[0])
    # step 0's rows are exactly the ensemble's samples under fold_in(key, 0)
    raw = np.asarray(stream_mod.batch_fn(key, 0, ens, src.batch_size))
    rows = reference_rows(sel, raw.reshape(-1, raw.shape[-1]))[0]
    assert {tuple(r) for r in a[0]} <= {tuple(r) for r in rows}


def _selection(enc, ens) -> Selection:
    """The encoder's columns in the ensemble's rows (the test SCMs share its codes)."""
    names = [c.name for c in ens.columns]
    return Selection(
        features=np.array([names.index(f) for f in enc.features], np.int64),
        fill=np.zeros(len(enc.features), np.float32),
        target=next(i for i, c in enumerate(ens.columns) if c.is_target),
        n_classes=len(enc.classes),
    )


def _draws(src, steps, n=40):
    return [src.draw(np.random.default_rng([0, s, 1]), n) for s in steps]


def _reference_draws(key, ens, sel, steps, members="pooled", n=40):
    """What `SyntheticRows` must give, in NumPy: sample, pool or pick, select."""
    import bridge._stream as stream_mod

    b = SyntheticRows(key, ens, sel, n, members=members).batch_size
    out = []
    for s in steps:
        rng = np.random.default_rng([0, s, 1])
        k = ens.n_members
        if members == "per_step":
            index = int(rng.integers(k)) * b + np.arange(b)
        else:
            index = rng.permutation(k * b)
        raw = np.asarray(stream_mod.batch_fn(key, s, ens, b))
        X, y = reference_rows(sel, raw.reshape(-1, raw.shape[-1])[index])
        out.append((X[:n], y[:n]))
    return out


@pytest.mark.parametrize("members", ["pooled", "per_step"])
def test_synthetic_rows__same_key_and_step_give_identical_rows(data, members):
    X, y, enc, sel, ens = data
    key = jax.random.key(3)
    # the encoder's selection is the hand-built one (the test SCMs share its codes)
    np.testing.assert_array_equal(sel.features, _selection(enc, ens).features)
    assert (sel.target, sel.n_classes) == (_selection(enc, ens).target, 2)
    first = _draws(SyntheticRows(key, ens, sel, 40, members=members), range(3))
    again = _draws(SyntheticRows(key, ens, sel, 40, members=members), range(3))
    resumed = _draws(SyntheticRows(key, ens, sel, 40, members=members, start=2), [2])
    decoded = _reference_draws(key, ens, sel, range(3), members)
    for (Xa, ya), (Xb, yb), (Xd, yd) in zip(first, again, decoded, strict=True):
        assert (Xa.dtype, ya.dtype, Xa.shape) == (np.float32, np.int64, (40, 4))
        np.testing.assert_array_equal(Xa, Xb)
        np.testing.assert_array_equal(ya, yb)
        # the compiled call gives exactly the NumPy reference's rows
        np.testing.assert_array_equal(Xa, Xd)
        np.testing.assert_array_equal(ya, yd)
    np.testing.assert_array_equal(resumed[0][0], first[2][0])
    assert not np.array_equal(first[0][0], first[1][0])


def test_synthetic_rows__pooled_rows_cover_every_member(data):
    import bridge._stream as stream_mod

    X, y, enc, sel, ens = data
    key = jax.random.key(5)

    def members_hit(members):
        src = SyntheticRows(key, ens, sel, 40, members=members)
        Xs, _ = src.draw(np.random.default_rng(0), 40)
        raw = np.asarray(stream_mod.batch_fn(key, 0, ens, src.batch_size))
        member_of = {
            tuple(row[sel.features]): m for m in range(len(raw)) for row in raw[m]
        }
        return [member_of[tuple(r)] for r in Xs]

    pooled = members_hit("pooled")
    assert set(pooled) == set(range(ens.n_members))
    assert min(pooled.count(m) for m in range(ens.n_members)) >= 40 // 3 - 3
    assert len(set(members_hit("per_step"))) == 1


def test_synthetic_rows__dispatch_and_collect_alternate(data):
    X, y, enc, sel, ens = data
    src = SyntheticRows(jax.random.key(3), ens, _selection(enc, ens), 10)
    with pytest.raises(RuntimeError, match="dispatch a step"):
        src.collect(10)
    src.dispatch(np.random.default_rng([0, 0, 1]))
    assert src.pending
    with pytest.raises(RuntimeError, match="collect the dispatched"):
        src.dispatch(np.random.default_rng([0, 1, 1]))
    Xs, ys = src.collect(10)
    assert not src.pending
    want = _reference_draws(jax.random.key(3), ens, sel, [0], n=10)[0]
    np.testing.assert_array_equal(Xs, want[0])
    np.testing.assert_array_equal(ys, want[1])


def test_finetune__synthetic_rows_need_the_scm_and_its_selection(tfm, data):
    X, y, enc, sel, ens = data
    cfg = FinetuneConfig(**FAST, ratio=1.0, lr=1e-3)
    kw = dict(config=cfg, n_classes=2, X_val=X[60:], y_val=y[60:], scm=ens)
    with pytest.raises(ValueError, match="with its selection"):
        finetune(tfm, X[:60], y[:60], **kw)
    with pytest.raises(TypeError, match="Selection"):
        SyntheticRows(jax.random.key(0), ens, reference_rows, 10)
    run = finetune(tfm, X[:60], y[:60], selection=sel, **kw)
    assert [s["n_synthetic"] for s in run.steps] == [60, 60, 60]


@pytest.mark.parametrize("placement", ["context", "query", "both"])
def test_build_meta_batch__places_synthetic_rows_where_asked(placement):
    rng = np.random.default_rng(0)
    Xr, yr = np.zeros((30, 2), np.float32), np.repeat([0, 1], 15)
    Xs, ys = np.ones((20, 2), np.float32), np.repeat([0, 1], 10)
    mb = build_meta_batch(rng, Xr, yr, Xs, ys, query_fraction=0.3, placement=placement)
    assert mb.n_synthetic == 20
    assert mb.synthetic_share == pytest.approx(0.4)
    assert (mb.X_context[mb.synthetic_context] == 1).all()
    assert (mb.X_query[~mb.synthetic_query] == 0).all()
    assert mb.synthetic_context.any() == (placement != "query")
    assert mb.synthetic_query.any() == (placement != "context")
    assert set(mb.y_query) <= set(mb.y_context)


def test_ratio_at__schedules_run_from_ratio_to_ratio_end():
    assert ratio_at(5, 10, 2.0, 0.0, "constant") == 2.0
    assert ratio_at(0, 11, 2.0, 0.0, "linear") == 2.0
    assert ratio_at(5, 11, 2.0, 0.0, "linear") == pytest.approx(1.0)
    assert ratio_at(10, 11, 2.0, 0.0, "cosine") == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("ratio", -1.0, "ratio"),
        ("placement", "middle", "placement"),
        ("use_real", False, "SCM-only"),
        ("max_steps", -1, "max_steps"),
        ("validation", "test", "validation"),
        ("query_fraction", 1.0, "query_fraction"),
    ],
)
def test_finetune_config__rejects_bad_values(field, value, match):
    kw = {field: value}
    if field == "use_real":
        kw["ratio"] = 0.0
    with pytest.raises(ValueError, match=match):
        FinetuneConfig(**kw)
    assert dataclasses.is_dataclass(FinetuneConfig())


def test_finetune__synthetic_validation_scores_a_fixed_synthetic_set(tfm, data):
    res = _run(tfm, data, ratio=0.5, validation="both", n_synthetic_val=50)
    first, last = res.history[0], res.history[-1]
    for rec in (first, last):
        assert {"val_roc_auc", "val_synthetic_roc_auc"} <= set(rec)
        mean = (rec["val_roc_auc"] + rec["val_synthetic_roc_auc"]) / 2
        assert rec["val_score"] == pytest.approx(mean)
