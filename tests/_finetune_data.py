"""Shared tiny data for the fine-tuning tests: a table drawn from a random SCM and an
ensemble of other random SCMs over the same columns (standing in for a fitted one,
which takes far longer to fit than these tests may run)."""

from __future__ import annotations

import os

import jax
import numpy as np

import bridge
import jaxscm

# The TFM the tests fine-tune: the shipped default checkpoint (`finetune.load_tfm()`).
# CAUSALMIXFT_TEST_TFM may name another checkpoint file while developing.
TFM = os.environ.get("CAUSALMIXFT_TEST_TFM") or None
N_NODES = 5


def table(n: int = 80, seed: int = 0):
    """(X DataFrame with numeric x0..x3, y Series of "c0"/"c1" labels, columns)."""
    true = jaxscm.random_scm(
        jax.random.key(seed), N_NODES, target=True, n_classes=2, edge_prob=0.6
    )
    df = bridge.to_frame(jaxscm.sample(jax.random.key(seed + 1), true, n), true)
    X, y = df.drop(columns="y"), df["y"].astype(str)
    assert y.nunique() == 2
    return X, y, true.columns


def ensemble(columns, k: int = 3):
    """k random SCMs over `columns`, stacked."""
    scms = [
        jaxscm.random_scm(
            jax.random.key(100 + i), N_NODES, target=True, n_classes=2, edge_prob=0.6
        )
        for i in range(k)
    ]
    return jaxscm.stack(scms, columns=columns)


def encoded(n: int = 80, seed: int = 0):
    """Encoded (X float32, y int64), the encoder, its `Selection` and the ensemble."""
    from finetune._encode import TableEncoder

    X, y, cols = table(n, seed)
    enc = TableEncoder.fit(X, y)
    ens = ensemble(cols)
    return (
        enc.transform(X),
        enc.encode_labels(y).astype(np.int64),
        enc,
        enc.synthetic_selection(ens.columns),
        ens,
    )


def reference_rows(selection, x):
    """NumPy reference of a `Selection` on (n, d) SCM rows: (X float32, y int64)."""
    x = np.asarray(x)
    left_out = selection.features < 0
    X = x[:, np.where(left_out, 0, selection.features)].astype(np.float32)
    X[:, left_out] = selection.fill[left_out]
    return X, x[:, selection.target].astype(np.int64)
