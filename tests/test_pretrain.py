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
