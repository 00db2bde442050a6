"""TabEBM (`finetune.augmenters._tabebm`): its energy against the TFM's logits, SGLD.

The shared interface tests (schema round trip, determinism, class requests,
detection) run for tabebm in test_augmenters (slow set). Here: the energy read
back from the TFM's own forward pass, the independence of a row's energy from the
other rows, SGLD lowering the energy, snapping, the time limit and bad input, on
a small planted table with few SGLD steps.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from _augment_data import planted

from finetune.augmenters import make
from jaxscm import infer_schema

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def table():
    X, y = planted(40)
    return X, y, infer_schema(X.assign(y=y), "y", kinds={"k": "integer"})


@pytest.fixture(scope="module")
def gen(table):
    X, y, cols = table
    return make("tabebm", n_steps=3).fit(X, y, columns=cols, seed=0)


def _codes(X, cols):
    return np.column_stack(
        [c.code_of(X[c.name].astype(object).to_numpy()) for c in cols[:-1]]
    )


def test_tabebm__energy_is_minus_logsumexp_of_the_tfm_decoder_logits(
    table, gen, monkeypatch
):
    # Independently of TabEBM: run the TFM's own forward on the class task
    # (standardised "yes" rows, label 0, then the negatives, label 1), capture the
    # queries and keys its many-class decoder attends with, and rebuild both the
    # network's output and the per-head unnormalised logits from them.
    from tabpfn.architectures import tabpfn_v3_5

    from finetune import load_tfm
    from finetune._tabpfn import network_of

    X, y, cols = table
    x = _codes(X, cols)
    z = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)
    real = z[(y == "yes").to_numpy()]
    ctx = np.vstack([real, gen.negatives_])
    labels = np.r_[np.zeros(len(real)), np.ones(len(gen.negatives_))]
    query = z[:12]
    seen = {}
    original = tabpfn_v3_5._chunked_class_attention

    def spy(q, k, v, softmax_scaling_layer=None):
        seen.update(q=q, k=k, v=v, layer=softmax_scaling_layer)
        return original(q, k, v, softmax_scaling_layer=softmax_scaling_layer)

    monkeypatch.setattr(tabpfn_v3_5, "_chunked_class_attention", spy)
    module = network_of(load_tfm()).module.eval()
    inputs = torch.tensor(np.vstack([ctx, query]), dtype=torch.float32)[:, None]
    with torch.no_grad():
        out = module(
            inputs,
            torch.tensor(labels, dtype=torch.float32)[:, None],
            task_type="multiclass",
        )[:, 0, :2]
        q, k = seen["q"][0], seen["k"][0]  # (M, H, D), (N, H, D)
        if seen["layer"] is not None:
            q = seen["layer"](seen["q"], k.shape[0])[0]
        scores = torch.einsum("mhd,nhd->hmn", q, k) / math.sqrt(q.shape[-1])
    # the captured scores are the network's: they give its output logits back
    p = torch.softmax(scores, -1) @ seen["v"][0, :, 0, :2]  # (H, M, 2)
    rebuilt = torch.log(p.mean(0).clamp(min=1e-5) + 3e-5)
    torch.testing.assert_close(rebuilt, out, rtol=1e-4, atol=1e-4)
    # those logits are normalised: their logsumexp is the clamp's constant
    assert torch.logsumexp(out, -1).abs().max() < 1e-3
    # the energy: -logsumexp over classes of each head's unnormalised logits
    # (= over all context rows of its scores), averaged over the heads
    want = -torch.logsumexp(scores, -1).mean(0).double().numpy()
    got = gen.energy(X.iloc[:12], "yes")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert want.std() > 1e-2  # not flat, unlike -logsumexp of the normalised output
    np.testing.assert_array_equal(gen.energy(x[:12], "yes"), got)  # codes too


def test_tabebm__a_rows_energy_does_not_depend_on_the_other_rows(table, gen):
    X, _, _ = table
    all_rows = gen.energy(X, "no")
    np.testing.assert_allclose(gen.energy(X.iloc[5:8], "no"), all_rows[5:8], 1e-5)
    assert not np.allclose(all_rows, gen.energy(X, "yes"))  # the class task counts


def test_class_logits__the_context_cache_gives_the_full_forwards_logits(gen):
    from finetune._tabpfn import class_logits

    xc, yc, cache = gen._tasks[1]
    xq = torch.randn(7, xc.shape[1], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        u_full, out_full = class_logits(gen._net, xc, yc, xq, 2)
        u_cache, out_cache = class_logits(gen._net, xc, yc, xq, 2, cache=cache)
    assert cache is not None
    torch.testing.assert_close(u_cache, u_full, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out_cache, out_full, rtol=1e-5, atol=1e-5)


def test_tabebm__sgld_lowers_the_energy_from_the_real_rows():
    # numeric columns only, so decoding moves nothing; the same draw seed starts
    # both runs from the same rows with the same noise
    X, y = planted(40)
    X = X[["a", "b"]]
    short = make("tabebm", n_steps=1).fit(X, y, seed=0)
    long = make("tabebm", n_steps=25).fit(X, y, seed=0)
    e_short = short.energy(short.sample(16, seed=2, y="no")[0], "no")
    e_long = short.energy(long.sample(16, seed=2, y="no")[0], "no")
    assert e_long.mean() < e_short.mean() - 0.05


def test_tabebm__same_seed_same_rows_requests_exact_codes_snapped(table, gen):
    X, _, _ = table
    X1, y1 = gen.sample(20, seed=3, y={"no": 1, "yes": 1})
    X2, y2 = gen.sample(20, seed=3, y={"no": 1, "yes": 1})
    pd.testing.assert_frame_equal(X1, X2)
    pd.testing.assert_series_equal(y1, y2)
    assert y1.value_counts().to_dict() == {"no": 10, "yes": 10}
    assert not X1.equals(gen.sample(20, seed=4, y={"no": 1, "yes": 1})[0])
    assert set(X1["k"]) <= set(X["k"])
    assert set(X1["c"].astype(str)) <= set(X["c"])
    assert not X1["a"].isin(X["a"]).any()  # numeric values moved off the real rows
    assert gen.steps_done_ == 3


def test_tabebm__time_limit_stops_the_chains_early(table):
    X, y, cols = table
    gen = make("tabebm", n_steps=10_000, time_limit=0.5).fit(X, y, columns=cols)
    Xs, _ = gen.sample(8, seed=0)
    assert 1 <= gen.steps_done_ < 10_000
    assert len(Xs) == 8


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"n_steps": 0}, "n_steps must be an integer >= 1"),
        ({"n_negatives": 1.5}, "n_negatives must be an integer >= 1"),
        ({"step_size": -0.1}, "step_size must be a finite number >= 0"),
        ({"noise_std": float("nan")}, "noise_std must be a finite number"),
        ({"corner": 0}, "corner must be a finite number > 0"),
        ({"time_limit": 0}, "time_limit must be seconds > 0 or None"),
    ],
)
def test_tabebm__bad_options_are_refused(options, match):
    with pytest.raises(ValueError, match=match):
        make("tabebm", **options)


def test_tabebm__energy_refuses_bad_input(table, gen):
    X, _, _ = table
    with pytest.raises(RuntimeError, match="not fitted"):
        make("tabebm").energy(X, "yes")
    with pytest.raises(ValueError, match="not a training class"):
        gen.energy(X, "maybe")
    with pytest.raises(ValueError, match="X lacks the feature columns \\['k'\\]"):
        gen.energy(X.drop(columns="k"), "yes")
    with pytest.raises(ValueError, match="must have 4 feature columns"):
        gen.energy(np.zeros((3, 2)), "yes")
    bad = _codes(X, gen.columns_)
    bad[0, 1] = np.nan
    with pytest.raises(ValueError, match="column 'b' of X holds missing"):
        gen.energy(bad, "yes")


def test_class_logits__v2_logits_are_the_output_other_architectures_refused():
    from finetune._tabpfn import Network, class_logits
    from finetune.pretrain import PretrainConfig, build_model

    module, cfg, arch = build_model(PretrainConfig(steps=1, arch="v2-micro"))
    net = Network(module.eval(), cfg, None, arch)
    g = torch.Generator().manual_seed(0)
    xc, xq = torch.randn(10, 3, generator=g), torch.randn(4, 3, generator=g)
    yc = torch.tensor([0.0, 1.0] * 5)
    with torch.no_grad():
        u, out = class_logits(net, xc, yc, xq, 2)
        direct = module(torch.cat([xc, xq])[:, None], yc[:, None])[:, 0, :2]
    assert u.shape == (1, 4, 2)
    torch.testing.assert_close(u[0], direct)
    torch.testing.assert_close(out, direct)
    with pytest.raises(NotImplementedError, match="tabpfn_v3 network"):
        class_logits(Network(module, cfg, None, "tabpfn_v3"), xc, yc, xq, 2)


def test_nearest__snaps_to_the_closest_seen_value():
    from finetune.augmenters._tabebm import _nearest

    values = np.array([0.0, 2.0, 5.0])
    x = np.array([-3.0, 0.9, 1.1, 3.4, 3.6, 9.0])
    np.testing.assert_array_equal(_nearest(values, x), [0, 0, 2, 2, 5, 5])
    np.testing.assert_array_equal(_nearest(np.array([4.0]), x), [4.0] * 6)


def test_tabebm__a_class_without_training_rows_is_refused_by_name():
    X, y = planted(40)
    y3 = y.copy()
    y3.iloc[0] = "maybe"
    cols = infer_schema(X.assign(y=y3), "y")  # the schema knows a third class
    gen = make("tabebm", n_steps=1).fit(X.iloc[1:], y.iloc[1:], columns=cols)
    assert "maybe" in gen.classes_
    with pytest.raises(ValueError, match="class 'maybe' has no training rows"):
        gen.sample(3, y="maybe")
