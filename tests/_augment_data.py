"""The planted table the generator tests share (test_augmenters, test_cli), and
the small `causalmixft finetune` command line over it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def planted(n: int = 128, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """An easy planted-SCM table with numeric, integer and categorical features."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = 0.9 * a + 0.4 * rng.normal(size=n)
    k = rng.poisson(np.exp(1.5 + 0.4 * a)).astype(np.int64)
    c = np.where(a + rng.normal(size=n) > 0, "high", "low")
    X = pd.DataFrame({"a": a, "b": b, "k": k, "c": pd.Series(c, dtype="string")})
    logit = 1.5 * a - 1.0 * b + 1.2 * (c == "high") - 1.8
    y = pd.Series(np.where(logit + rng.logistic(size=n) > 0, "yes", "no"), name="y")
    return X, y


def finetune_argv(tmp_path: Any, *extra: str, tfm: str | None = None) -> list[str]:
    """`causalmixft finetune` on an 80-row planted CSV in `tmp_path`: 2 steps,
    one ensemble member, `extra` flags, then ``--tfm`` when `tfm` is given."""
    X, y = planted(80)
    X.assign(y=y).to_csv(tmp_path / "data.csv", index=False)
    argv = [
        "finetune",
        str(tmp_path / "data.csv"),
        "--target",
        "y",
        "-o",
        str(tmp_path / "run"),
        "--max-steps",
        "2",
        "--eval-every",
        "1",
        "--n-estimators",
        "1",
        "--n-estimators-train",
        "1",
        *extra,
    ]
    return argv + (["--tfm", tfm] if tfm else [])
