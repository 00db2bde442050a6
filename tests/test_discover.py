"""discover: bootstrap PC/FCI edge probabilities."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jaxscm import Column, discover
from jaxscm.fitting import DiscoveryOptions as Opts
from jaxscm.fitting._discover import _votes, marks_to_votes

# Skeleton F1 floor on the planted 10-node linear-Gaussian DAG below (2,000 rows).
# Measured with these seeds (causal-learn 0.1.4.8): PC, FCI and both 0.90. The floor
# leaves room for library changes while still catching a broken pipeline (an empty
# graph scores 0.0 here, a complete one 0.39).
F1_FLOOR = 0.8


def _planted(
    seed: int = 0, d: int = 10, n: int = 2000
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    adj = np.triu(rng.random((d, d)) < 0.3, 1)
    w = adj * rng.uniform(0.6, 1.2, (d, d)) * rng.choice([-1.0, 1.0], (d, d))
    x = np.zeros((n, d))
    for j in range(d):
        x[:, j] = x @ w[:, j] + rng.normal(size=n)
    return x, adj


def _f1(probs: np.ndarray, adj: np.ndarray) -> float:
    found = np.triu((probs + probs.T) > 0.5, 1)
    true = np.triu(adj | adj.T, 1)
    tp = (found & true).sum()
    return 2 * tp / (found.sum() + true.sum())


@pytest.mark.parametrize("method", ["pc", "fci", "both"])
def test_discover__recovers_planted_skeleton(method):
    x, adj = _planted()
    probs = discover(
        x, options=Opts(method=method, n_bootstrap=4), seed=0, progress=False
    )
    assert probs.shape == adj.shape
    assert np.all(np.diagonal(probs) == 0)
    assert np.all(probs + probs.T <= 1 + 1e-12)
    assert _f1(probs, adj) >= F1_FLOOR


def test_discover__same_seed_same_probs_other_seed_differs():
    x, _ = _planted(n=300)
    a = discover(x, options=Opts(n_bootstrap=5), seed=3, progress=False)
    assert np.array_equal(
        a, discover(x, options=Opts(n_bootstrap=5), seed=3, progress=False)
    )
    assert not np.array_equal(
        a, discover(x, options=Opts(n_bootstrap=5), seed=4, progress=False)
    )


def test_discover__target_sink_moves_votes_into_the_target():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 1000)
    a = y + rng.normal(size=1000)  # y -> a in truth; as a sink y receives the edge
    b = a + rng.normal(size=1000)
    df = pd.DataFrame({"y": y.astype(str), "a": a, "b": b})
    sink = discover(df, target="y", options=Opts(n_bootstrap=3), progress=False)
    free = discover(
        df, target="y", options=Opts(n_bootstrap=3, target_sink=False), progress=False
    )
    assert np.all(sink[0, :] == 0)
    assert sink[1, 0] == pytest.approx(free[1, 0] + free[0, 1])


def test_marks_to_votes__pag_marks_count_as_documented():
    tail, arrow, circle = -1, 1, 2
    pairs = {  # (mark at 0, mark at 1) -> expected (P(0->1), P(1->0))
        (tail, arrow): (1.0, 0.0),
        (arrow, tail): (0.0, 1.0),
        (circle, arrow): (1.0, 0.0),
        (tail, circle): (1.0, 0.0),
        (tail, tail): (0.5, 0.5),
        (circle, circle): (0.5, 0.5),
        (arrow, arrow): (0.5, 0.5),
        (0, 0): (0.0, 0.0),
    }
    for (m0, m1), (fwd, bwd) in pairs.items():
        g = np.array([[0, m0], [m1, 0]])
        v = marks_to_votes(g)
        assert (v[0, 1], v[1, 0]) == (fwd, bwd), (m0, m1)


def test_discover__bad_input_raises():
    with pytest.raises(ValueError, match="method"):
        discover(np.zeros((5, 2)), options=Opts(method="ges"))
    with pytest.raises(ValueError, match="column 1 holds NaN"):
        discover(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="columns"):
        discover(np.zeros((5, 2)), columns=[Column("a")])


def test_discover__time_limit_stops_after_the_first_resample():
    x, _ = _planted(n=300)
    probs = discover(x, options=Opts(n_bootstrap=50, time_limit=0.0), progress=False)
    # one completed run: every vote is 0, 0.5 or 1
    assert set(np.unique(probs)) <= {0.0, 0.5, 1.0}
    assert not np.array_equal(
        probs, discover(x, options=Opts(n_bootstrap=4), progress=False)
    )


def test_discover__progress_bar_stays_out_of_non_terminal_output(capsys):
    x, _ = _planted(d=4, n=200)
    probs = discover(x, options=Opts(n_bootstrap=3), seed=0, progress=True)
    assert probs.shape == (4, 4)
    captured = capsys.readouterr()
    assert "discover" not in captured.err
    assert captured.out == ""


def test_discover__copied_and_resample_constant_columns_do_not_fail_fisherz():
    # Two 0/1 flags that are complements of each other (hypothyroid's 128-row splits:
    # TT4_measured, T4U_measured, FTI_measured, TBG_measured) make every Fisher-z
    # correlation sub-matrix that holds both singular: without the jittered retry
    # every resample fails. A rare flag is also constant in most resamples.
    x, _ = _planted(n=400, d=5)
    flag = (x[:, 0] > 0).astype(float)
    rare = np.zeros(400)
    rare[:3] = 1.0
    data = np.c_[x, flag, 1.0 - flag, rare]
    with pytest.raises(ValueError, match="singular"):
        _votes(("pc",), data, "fisherz", 0.05, None)
    probs = discover(data, options=Opts(n_bootstrap=3), seed=0, progress=False)
    assert np.isfinite(probs).all()
    assert probs[5, 6] + probs[6, 5] == 1.0  # the complements stay adjacent


def test_discover__fast_fisherz_gives_causallearns_p_values_and_graphs():
    # `_run` swaps causal-learn's FisherZ for a subclass without its per-call
    # overhead; every p-value (any argument order, repeats from the cache) and the
    # PC/FCI graphs must be FisherZ's own, bit for bit.
    from causallearn.search.ConstraintBased.FCI import fci
    from causallearn.search.ConstraintBased.PC import pc
    from causallearn.utils.cit import CIT, FisherZ

    from jaxscm.fitting._discover import _fast_fisherz, _run

    x, _ = _planted(n=300, d=7)
    x[:, 6] = np.round(x[:, 6])  # a coarse column, like the integer codes
    fast, slow = CIT(x, _fast_fisherz()), FisherZ(x)
    assert type(fast) is not FisherZ
    assert fast.method == "fisherz"
    rng = np.random.default_rng(1)
    for _ in range(400):
        i, j, *cond = rng.permutation(7)[: int(rng.integers(2, 7))]
        cond = [int(c) for c in rng.permutation(cond)]
        assert fast(j, i, tuple(cond)) == slow(i, j, cond)
        assert fast(i, j, cond) == slow(j, i, tuple(cond))
    with pytest.raises(AssertionError):
        fast(0, 1, (1, 2))
    for algo in ("pc", "fci"):
        got = _run(algo, x, "fisherz", 0.05, 3)
        if algo == "pc":
            g = pc(x, 0.05, "fisherz", stable=True, show_progress=False, max_k=3)
            want = marks_to_votes(np.asarray(g.G.graph))
        else:
            g, _ = fci(x, "fisherz", 0.05, depth=3, show_progress=False)
            want = marks_to_votes(np.asarray(g.graph))
        np.testing.assert_array_equal(got, want)
    # An exact copy: its correlation rows equal the original's, so the inverse
    # fails under any LAPACK. (An affine copy, 2x + 1, is singular only up to
    # rounding: with numpy 2.4.6 here both FisherZ and ours return p = 0 for it.)
    singular = np.c_[x, x[:, 0]]
    with pytest.raises(ValueError, match="singular"):
        CIT(singular, _fast_fisherz())(0, 7, (1,))
