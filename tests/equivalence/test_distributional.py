"""Distributional equivalence: DoWhy `draw_samples` vs `jaxscm.sample`, distilled.

Models are fitted by the front end itself (schema, bootstrap discovery, one sampled
DAG, `fit(mechanisms="fast")`, `distill`) on scikit-learn's bundled wine table and a
column subset of breast_cancer, so linear, gradient-boosting, discrete and classifier
mechanisms all appear. Per node: KS for numeric/integer columns, chi-square on the
category counts for categorical ones. Jointly: an energy-distance permutation test on
standardised columns. Interventions: means after `do` against
`gcm.interventional_samples`, within 4 standard errors. Each p-value assertion fails
by chance with probability TEST_FAILURE_RATE; there are no retries.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import jaxscm
from jaxscm._dags import sample_dags
from jaxscm.distillation._distill import distill
from jaxscm.fitting._discover import DiscoveryOptions, discover
from jaxscm.fitting._fit import fit, seeded_numpy
from jaxscm.fitting._table import encode, prepare
from tests.equivalence import TEST_FAILURE_RATE

N = 2000  # rows per side for the per-node tests
N_JOINT = 500  # rows per side for the energy test (1,000 pooled)
N_PERMUTATIONS = 9999  # smallest attainable p is 1e-4, so p > 1e-4 can fail


def _frame(name: str) -> tuple[pd.DataFrame, str]:
    from sklearn import datasets

    if name == "wine":
        bunch = datasets.load_wine(as_frame=True)
        df = bunch.frame.copy()
        keep = list(df.columns)
    else:
        bunch = datasets.load_breast_cancer(as_frame=True)
        df = bunch.frame.copy()
        keep = [*df.columns[:5], *df.columns[20:25], "target"]
    df["target"] = np.asarray(bunch.target_names)[df["target"].to_numpy()]
    return df[keep], "target"


@functools.cache
def _fitted(name: str):
    df, target = _frame(name)
    prep = prepare(df, target)
    probs = discover(
        prep, options=DiscoveryOptions(n_bootstrap=5), seed=0, progress=False
    )
    dag = np.asarray(sample_dags(jax.random.key(0), probs, 1))[0]
    model = fit(prep.codes, dag, columns=prep.columns, mechanisms="fast", seed=0)
    scm = distill(model, columns=prep.columns)
    return prep.columns, model, scm


def _dowhy_codes(frame: pd.DataFrame, columns) -> np.ndarray:
    # Rounded to float32, the SCM's dtype: resampled roots are atoms, and an atom at
    # 2.8 (float64) vs 2.7999999 (float32) would split every tie and fake a KS gap.
    codes = encode(frame[[c.name for c in columns]], columns)
    return codes.astype(np.float32).astype(np.float64)


def _jax_codes(x: jax.Array, scm: jaxscm.SCM, columns) -> np.ndarray:
    order = [scm.index(c.name) for c in columns]
    return np.asarray(x, np.float64)[:, order]


@pytest.fixture(scope="module", params=["wine", "breast_cancer"])
def draws(request):
    from dowhy import gcm

    columns, model, scm = _fitted(request.param)
    with seeded_numpy(1):
        dowhy = _dowhy_codes(gcm.draw_samples(model, N), columns)
    ours = _jax_codes(jaxscm.sample(jax.random.key(1), scm, N), scm, columns)
    return request.param, columns, model, scm, dowhy, ours


def test_fitted_models__cover_linear_hgb_discrete_and_classifier_mechanisms():
    kinds = set()
    for name in ("wine", "breast_cancer"):
        _, model, _ = _fitted(name)
        for v in model.graph.nodes:
            kinds.add(
                (
                    type(model.causal_mechanism(v)).__name__,
                    model.graph.nodes[v]["jaxscm_mechanism"],
                )
            )
    assert {
        ("AdditiveNoiseModel", "linear"),
        ("AdditiveNoiseModel", "hgb"),
        ("ClassifierFCM", "linear"),
    } <= kinds
    assert any(k[0] == "DiscreteAdditiveNoiseModel" for k in kinds)


def test_sample__per_node_marginals_match_dowhy(draws):
    name, columns, _, _, dowhy, ours = draws
    assert ours.shape == dowhy.shape == (N, len(columns))
    for j, col in enumerate(columns):
        if col.kind == "categorical":
            k = col.n_categories
            counts = np.stack(
                [np.bincount(s[:, j].astype(int), minlength=k) for s in (dowhy, ours)]
            )
            counts = counts[:, counts.sum(0) > 0]
            p = stats.chi2_contingency(counts).pvalue if counts.shape[1] > 1 else 1.0
        else:
            p = stats.ks_2samp(dowhy[:, j], ours[:, j]).pvalue
        assert p > TEST_FAILURE_RATE, f"{name}, column {col.name!r}: p = {p:.2e}"


def _energy_pvalue(a: np.ndarray, b: np.ndarray, seed: int) -> float:
    """Permutation p-value of the multivariate energy distance between a and b."""
    pooled = np.concatenate([a, b])
    scale = pooled.std(axis=0)
    pooled = pooled / np.where(scale > 0, scale, 1.0)
    sq = (pooled**2).sum(1)
    dist = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * pooled @ pooled.T, 0.0))
    total, n, m = dist.sum(), len(a), len(b)

    def statistic(idx_a, idx_b, axis):
        # Within-group sums through indicator matrices (batched): the cross sum
        # follows from the total, so each resample costs one (B, N) @ (N, N).
        idx_a = np.atleast_2d(idx_a).astype(np.int64)
        g = np.zeros((idx_a.shape[0], len(pooled)))
        np.put_along_axis(g, idx_a, 1.0, axis=1)
        s_aa = ((g @ dist) * g).sum(1)
        s_bb = (((1 - g) @ dist) * (1 - g)).sum(1)
        s_ab = (total - s_aa - s_bb) / 2
        return 2 * s_ab / (n * m) - s_aa / n**2 - s_bb / m**2

    idx = np.arange(len(pooled))
    res = stats.permutation_test(
        (idx[:n], idx[n:]),
        statistic,
        permutation_type="independent",
        vectorized=True,
        n_resamples=N_PERMUTATIONS,
        alternative="greater",
        batch=500,
        rng=np.random.default_rng(seed),
    )
    return float(res.pvalue)


def test_sample__joint_energy_distance_matches_dowhy(draws):
    name, _, _, _, dowhy, ours = draws
    p = _energy_pvalue(dowhy[:N_JOINT], ours[:N_JOINT], seed=0)
    assert p > TEST_FAILURE_RATE, f"{name}: energy-distance p = {p:.2e}"


def test_energy_test__detects_a_shifted_distribution(draws):
    # The joint test has power: the same draws with every column shifted by 0.5 SD
    # fail it.
    _, _, _, _, dowhy, ours = draws
    shifted = ours[:N_JOINT] + 0.5 * dowhy.std(0)
    assert _energy_pvalue(dowhy[:N_JOINT], shifted, seed=0) <= TEST_FAILURE_RATE


def test_do__interventional_means_match_gcm_within_4_se(draws):
    from dowhy import gcm

    name, columns, model, scm, _, _ = draws
    # intervene on the numeric node with the most descendants
    import networkx as nx

    numeric = [c.name for c in columns if c.kind == "numeric"]
    node = max(numeric, key=lambda v: (len(nx.descendants(model.graph, v)), v))
    value = float(
        np.quantile(
            _dowhy_codes(gcm.draw_samples(model, 200), columns)[
                :, [c.name for c in columns].index(node)
            ],
            0.8,
        )
    )
    with seeded_numpy(2):
        theirs = _dowhy_codes(
            gcm.interventional_samples(
                model, {node: lambda x: value}, num_samples_to_draw=N
            ),
            columns,
        )
    ours = _jax_codes(
        jaxscm.sample(jax.random.key(2), jaxscm.do(scm, {node: value}), N), scm, columns
    )
    assert np.all(ours[:, [c.name for c in columns].index(node)] == np.float32(value))
    for j, col in enumerate(columns):
        feats = (
            [(theirs[:, j] == c, ours[:, j] == c) for c in range(col.n_categories)]
            if col.kind == "categorical"
            else [(theirs[:, j], ours[:, j])]
        )
        for a, b in feats:
            a, b = a.astype(float), b.astype(float)
            se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
            assert abs(a.mean() - b.mean()) <= 4 * se + 1e-6 * (1 + abs(a.mean())), (
                f"{name}, do({node}={value:.3g}), column {col.name!r}: means "
                f"{a.mean():.4g} vs {b.mean():.4g}, SE {se:.3g}"
            )
