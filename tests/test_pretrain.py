"""finetune.pretrain: a tiny run trains, exports a loadable checkpoint, and resumes."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tabpfn")

from finetune.pretrain import (  # noqa: E402
    CURVE_CSV,
    MODEL_FILE,
    PretrainConfig,
    load_state,
    pretrain,
)
from jaxscm.prior import PriorConfig  # noqa: E402

TINY = PretrainConfig(
    steps=2,
    arch="v2-micro",
    batch_size=2,
    min_rows=16,
    warmup=1,
    save_every=1,
    prior=PriorConfig(
        n_rows=24, n_nodes=6, max_features=4, max_classes=3, n_trees=2, tree_depth=2
    ),
)


def test_pretrain__resume_continues_from_saved_step(tmp_path):
    first = pretrain(TINY, tmp_path, progress=False)
    assert first["step"] == 2
    state = load_state(tmp_path)
    assert int(state["step"]) == 2
    before = {k: v.clone() for k, v in state["model"].items()}

    import dataclasses

    second = pretrain(
        dataclasses.replace(TINY, steps=4), tmp_path, resume=True, progress=False
    )
    assert second["step"] == 4
    state = load_state(tmp_path)
    assert [int(r[0]) for r in state["history"]] == [1, 2, 3, 4]
    assert state["optimizer"]["state"][0]["step"].item() == 4  # AdamW kept its moments
    changed = any(not torch.equal(before[k], v) for k, v in state["model"].items())
    assert changed
    rows = (tmp_path / CURVE_CSV).read_text().strip().splitlines()
    assert rows[0] == "step,loss,lr,wall_s"
    assert len(rows) == 5
    assert json.loads(state["config"])["steps"] == 4


def test_pretrain__resume_refuses_other_config(tmp_path):
    pretrain(TINY, tmp_path, progress=False)
    import dataclasses

    with pytest.raises(ValueError, match="different configuration"):
        pretrain(
            dataclasses.replace(TINY, lr=1.0), tmp_path, resume=True, progress=False
        )


def test_pretrain__export_loads_in_tabpfn(tmp_path):
    from tabpfn import TabPFNClassifier

    pretrain(TINY, tmp_path, progress=False)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = (x[:, 0] > 0).astype(int)
    clf = TabPFNClassifier(
        model_path=str(tmp_path / MODEL_FILE), device="cpu", n_estimators=1
    )
    proba = clf.fit(x[:30], y[:30]).predict_proba(x[30:])
    assert proba.shape == (10, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_pretrain__init_from_grows_tiny_into_deeper_identical_model(tmp_path):
    import dataclasses

    from finetune._tfm import SHIPPED_CHECKPOINTS
    from finetune.pretrain import build_model, init_from_checkpoint, loss_on_batch

    tiny = SHIPPED_CHECKPOINTS["causalmixft-prior-v3.5-tiny"]
    prior = PriorConfig(n_rows=48, n_nodes=12, max_features=6)
    small, _, _ = build_model(
        PretrainConfig(steps=1, arch="v3.5-tiny", min_rows=16, prior=prior)
    )
    deep, _, _ = build_model(
        PretrainConfig(steps=1, arch="v3.5-tiny-4l", min_rows=16, prior=prior)
    )
    assert init_from_checkpoint(small, tiny) == len(small.state_dict())
    copied = init_from_checkpoint(deep, tiny)
    assert copied == len(small.state_dict()) < len(deep.state_dict())
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 48, 6, generator=gen)
    y = torch.randint(0, 3, (2, 48), generator=gen)
    k = torch.tensor([3, 3])
    with torch.no_grad():
        a = loss_on_batch(small.eval(), x, y, k, 32, 10)
        b = loss_on_batch(deep.eval(), x, y, k, 32, 10)
    torch.testing.assert_close(a, b)  # new blocks start as identity
    with pytest.raises(ValueError, match="init_from"):
        dataclasses.replace(TINY, init_from=str(tmp_path / "missing.safetensors"))


def test_pretrain__log_step_features_and_export_feature_cap(tmp_path):
    import dataclasses

    from tabpfn.checkpoint import Checkpoint

    from finetune.pretrain import _split

    cfg = dataclasses.replace(
        TINY,
        step_features="log",
        max_features_per_estimator=4,
        prior=dataclasses.replace(TINY.prior, n_nodes=24, max_features=20),
    )
    caps = [_split(cfg, s)[2] for s in range(200)]
    assert min(caps) >= 1
    assert max(caps) <= 20
    assert np.mean(np.asarray(caps) <= 6) > 0.4  # log-uniform: narrow steps common
    # "max" runs keep the rows/context of every step they had before the cap existed
    plain = dataclasses.replace(cfg, step_features="max")
    assert [_split(plain, s)[:2] for s in range(20)] == [
        _split(cfg, s)[:2] for s in range(20)
    ]
    pretrain(cfg, tmp_path, progress=False)
    ckpt = Checkpoint(tmp_path / MODEL_FILE).load()
    transforms = ckpt["inference_config"]["PREPROCESS_TRANSFORMS"]
    assert [t["max_features_per_estimator"] for t in transforms] == [4, 4]
