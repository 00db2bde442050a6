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
    np.testing.assert_array_equal(np.asarray(got), np.asarray(te._loop_leaves(x)))


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


def _latency_record() -> dict:
    call = {"first_call_s": 30.0, "compile_s": 27.0, "rows_sha": "ab"}
    cached = {"first_call_s": 6.0, "compile_s": 2.0, "rows_sha": "ab"}
    fit = {"timings": {"discover": 5.0, "fit": 10.0, "total": 16.0}, "rows_sha": "cd"}
    return {
        "compile": {
            "case": "credit-g 128 rows",
            "in_process": {
                "before_first_s": 60.0,
                "plain_first_s": 30.0,
                "before_second_s": 6.0,
                "plain_second_s": 0.3,
                "compiles_after_first": 0,
            },
            "cold": call,
            "cached": cached,
            "same_rows": True,
        },
        "small_batch": [
            {
                "case": "linear-30",
                "jaxscm_calls_per_s": 600.0,
                "dowhy_calls_per_s": 3.0,
                "ratio": 200.0,
            }
        ],
        "fit": {
            "case": "credit-g 1000 x 20",
            "n_jobs_1": {**fit, "wall_s": 40.0},
            "n_jobs_2": {**fit, "wall_s": 20.0},
            "same_model": True,
        },
    }


def test_latency_markdown__every_row_with_its_ratio():
    from benchmarks._throughput_latency import markdown

    text = "\n".join(markdown(_latency_record()))
    assert "| first call in a process | op by op | 60.00 |" in text
    assert "| 20.0x |" in text  # second call 6.0 s -> 0.3 s
    assert "| 5.0x |" in text  # first call in a new process, cold vs cached
    assert "| 13.5x |" in text  # XLA compile 27 -> 2 s
    assert "| 8 x 512 call, linear-30 | 8 DoWhy draw_samples | 0.333 |" in text
    assert (
        "| fit_scm, credit-g 1000 x 20 | n_jobs=1 | 40.0 | n_jobs=2 | 20.0 | 2.0x |"
        in text
    )
    assert "discover 5.0 / 5.0, fit 10.0 / 10.0." in text


def test_latency_only__needs_a_throughput_record(tmp_path):
    with pytest.raises(SystemExit, match="no throughput record"):
        throughput.run_latency(out=tmp_path)
