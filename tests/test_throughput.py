"""The throughput benchmark's baselines and helpers (not its timings)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import throughput
from benchmarks._numpy_scm import numpy_sample
from benchmarks.tree_strategies import STRATEGIES
from jaxscm import SCM, Additive, Empirical, random_scm


def _deterministic(scm: SCM) -> SCM:
    """The same SCM with every noise fixed at one value, so NumPy and JAX agree."""

    def fix(m):
        noise = Empirical(values=jnp.array([0.25], jnp.float32))
        if isinstance(m, Additive):
            return Additive(f=m.f, noise=noise, link=m.link, discrete=m.discrete)
        return type(m)(noise=noise)

    return SCM(
        mechanisms=tuple(fix(m) for m in scm.mechanisms),
        columns=scm.columns,
        parents=scm.parents,
    )


@pytest.mark.parametrize("family", ["linear", "mlp", "tree"])
def test_numpy_sample__matches_jaxscm_on_fixed_noise(family):
    scm = _deterministic(
        random_scm(jax.random.key(4), 7, mechanism=family, edge_prob=0.6)
    )
    want = np.asarray(
        jax.jit(lambda s: __import__("jaxscm").sample(jax.random.key(0), s, 64))(scm)
    )
    got = numpy_sample(scm, 64, np.random.default_rng(0))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_numpy_sample__names_the_unsupported_node():
    from jaxscm import Linear, Root, gaussian
    from jaxscm._features import Cast, Pipeline

    f = Pipeline(
        steps=(
            Cast(dtype="float32"),
            Linear(coef=jnp.ones((1,)), intercept=jnp.zeros(())),
        )
    )
    scm = SCM(
        mechanisms=(Root(gaussian()), Additive(f=f, noise=gaussian())),
        columns=random_scm(jax.random.key(0), 2).columns,
        parents=((), (0,)),
    )
    with pytest.raises(NotImplementedError, match="'x1'.*Pipeline"):
        numpy_sample(scm, 4, np.random.default_rng(0))


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_tree_strategies__reach_the_gather_loop_leaves(name):
    scm = random_scm(
        jax.random.key(1), 6, mechanism="tree", edge_prob=0.8, tree_depth=4
    )
    te = scm.mechanisms[-1].f
    x = jax.random.normal(jax.random.key(2), (256, te.n_features))
    x = x.at[::7, 0].set(jnp.nan)  # missing values follow missing_left
    got = STRATEGIES[name](te, x)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(te.leaves(x)))


def test_grid__stops_at_the_time_budget():
    cfg = {"budget": 1.0, "max_elems": 1e12}
    rates, compile_s, stop = throughput._grid(
        (10, 100, 1000, 10_000), 3, cfg, run=lambda n: n / 500.0
    )  # 500 rows/s
    assert sorted(rates) == [10, 100]
    assert compile_s is None
    assert "time cap" in stop


def test_cli__bench_throughput_is_registered():
    from finetune.cli import build_parser

    args = build_parser().parse_args(["bench", "throughput", "--quick", "--no-parquet"])
    assert args.quick
    assert not args.parquet
