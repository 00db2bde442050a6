"""`causalmixft finetune` on a CSV file, as a new user runs it."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("tabpfn")

from _finetune_data import TFM, table  # noqa: E402

pytestmark = pytest.mark.torch


def test_cli_finetune__writes_model_history_curve_and_report(tmp_path, capsys):
    from finetune._estimator import CausalMixFTClassifier
    from finetune.cli import main

    X, y, _ = table(60)
    X.assign(label=y).to_csv(tmp_path / "data.csv", index=False)
    out = tmp_path / "run"
    argv = [
        "finetune",
        str(tmp_path / "data.csv"),
        "--target",
        "label",
        "-o",
        str(out),
        "--augment",
        "none",
        "--max-steps",
        "2",
        "--eval-every",
        "1",
        "--n-estimators",
        "1",
        "--n-estimators-train",
        "1",
        "--test-fraction",
        "0.25",
    ]
    if TFM:
        argv += ["--tfm", TFM]
    assert main(argv) == 0
    assert {p.name for p in out.iterdir()} == {
        "model",
        "history.csv",
        "steps.csv",
        "curve.png",
        "report.md",
    }
    assert (out / "history.csv").read_text().splitlines()[0].startswith("step,")
    assert "test roc_auc" in (out / "report.md").read_text()
    clf = CausalMixFTClassifier.load(out / "model")
    assert clf.predict(X[:5]).shape == (5,)
    assert main(argv) == 2
    assert "already holds a finished run" in capsys.readouterr().err
