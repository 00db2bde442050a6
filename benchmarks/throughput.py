"""Sampling throughput: jaxscm vs DoWhy vs NumPy vs the machine's rooflines.

Run ``causalmixft bench throughput`` (or ``python -m benchmarks.throughput``); add
``--quick`` for a one-minute smoke run. Writes ``throughput.json`` (every number,
versions, device, load) and ``throughput.md`` (ratio tables) to ``--out``.

For each case, DoWhy gcm models are fitted on data from `jaxscm.random_scm` (graph
and data) with one mechanism family, then distilled with `jaxscm.distill`, so every
method samples *the same fitted model*:

* ``jaxscm``: `jax.jit(jaxscm.sample)` of the distilled SCM (static structure);
* ``ensemble``: the structure-as-data path, 8 stacked members, n/8 rows each;
* ``DoWhy``: `gcm.draw_samples` (sklearn predict per node, pandas frames);
* ``NumPy``: a hand-written vectorised topological loop (`benchmarks._numpy_scm`);
* rooflines: the time to *write* an (n, d) float32 array (memory bandwidth), and to
  draw (n, d) standard normals with each JAX PRNG (threefry, rbg, unsafe_rbg).

PRNG choice (the user picks it through the key, e.g. `jax.random.key(0, impl="rbg")`;
`jaxscm.sample` accepts any): threefry (JAX's default) is the reproducible one - the
same key gives the same rows on every backend and JAX version that keeps the
threefry definition, and a sharded run equals the single-device run
(`jaxscm.sample_sharded`). ``rbg`` and ``unsafe_rbg`` use XLA's RngBitGenerator: fast
on TPUs (and GPUs), but their streams may change with the backend, XLA version or
sharding, and ``unsafe_rbg`` derives split/fold_in keys with weaker guarantees. On the
2-core CPU measured here they were *not* faster than threefry (see the roofline table),
so threefry stays the default everywhere.

Timings exclude compilation (reported separately: first call minus a steady call)
and end with `block_until_ready`. A method's n grid stops where the next size would
take longer than ``--budget`` seconds (or exceed the memory cap); the caps are in
the output. Ratios at an n a method did not reach use its rate at its largest n
(marked with ``*``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._throughput_latency import latency
from benchmarks._throughput_report import _describe, environment, markdown, parquet_rss
from jaxscm import atomic_write

RESULTS = Path(__file__).resolve().parent / "results"
FULL = {
    "nodes": (10, 30, 100),
    "mechanisms": ("linear", "hgb", "rf", "mlp"),
    "ns": (10_000, 100_000, 1_000_000, 10_000_000),
    "budget": 1.5,
    "max_elems": 1e8,
    "n_fit": 500,
    "parquet_rows": 100_000_000,
    "calls": 200,
}
QUICK = {
    "nodes": (10, 30),
    "mechanisms": ("linear", "hgb"),
    "ns": (10_000, 100_000),
    "budget": 0.5,
    "max_elems": 1e7,
    "n_fit": 300,
    "parquet_rows": 1_000_000,
    "calls": 30,
}
ENSEMBLE_K = 8


@dataclass
class Case:
    """One fitted model and what was measured on it."""

    name: str
    nodes: int
    mechanism: str
    scm: Any
    gcm_model: Any
    fit_s: float
    rates: dict[str, dict[int, float]] = field(default_factory=dict)
    compile_s: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def _now() -> float:
    return time.perf_counter()


def _steady(fn: Callable[[], Any], budget: float, *, warm: bool = False) -> float:
    """Best wall time of `fn`: up to 5 repeats within ~budget/2 (after one untimed
    call when `warm`: a JAX function compiles for every new n)."""
    if warm:
        fn()
    best, spent = float("inf"), 0.0
    for _ in range(5):
        t = _now()
        fn()
        dt = _now() - t
        best, spent = min(best, dt), spent + dt
        if spent > budget / 2:
            break
    return best


def _grid(
    ns: tuple[int, ...],
    d: int,
    cfg: dict[str, Any],
    run: Callable[[int], float],
    *,
    compile_fn: Callable[[int], float] | None = None,
) -> tuple[dict[int, float], float | None, str]:
    """rows/s at each n until the time budget or memory cap.

    Returns (rates, compile_s, why the grid stopped).
    """
    rates: dict[int, float] = {}
    compile_s = None
    stop = ""
    for n in ns:
        if n * d > cfg["max_elems"]:
            stop = f"memory cap: n*d <= {cfg['max_elems']:.0e}"
            break
        if rates:
            last_n = max(rates)
            if n / rates[last_n] > cfg["budget"]:
                stop = (
                    f"time cap: n={n:.0e} would take {n / rates[last_n]:.1f}s > budget"
                )
                break
        if compile_fn is not None and compile_s is None:
            compile_s = compile_fn(n)
        rates[n] = n / run(n)
    return rates, compile_s, stop


# --- models -------------------------------------------------------------------------


def _factory(mechanism: str) -> Callable[[], Any]:
    from dowhy.gcm import ml
    from sklearn.neural_network import MLPRegressor

    if mechanism == "linear":
        return ml.create_linear_regressor
    if mechanism == "hgb":
        return (
            ml.create_hist_gradient_boost_regressor
        )  # sklearn defaults: 100 iterations
    if mechanism == "rf":
        return lambda: ml.create_random_forest_regressor(
            n_estimators=100, random_state=0
        )
    if mechanism == "mlp":
        # one hidden layer of 32; max_iter bounds the fitting time of the benchmark
        return lambda: ml.SklearnRegressionModel(
            MLPRegressor(hidden_layer_sizes=(32,), max_iter=100, random_state=0)
        )
    raise ValueError(f"unknown mechanism {mechanism!r}")


def fit_case(nodes: int, mechanism: str, seed: int, n_fit: int) -> Case:
    """Fits DoWhy on random-SCM data with one mechanism family and distils it."""
    import jax
    from dowhy.gcm import config

    config.disable_progress_bars()
    import networkx as nx
    import pandas as pd
    from dowhy import gcm
    from scipy import stats

    import jaxscm
    from jaxscm import seeded_numpy

    family = {"linear": "linear", "hgb": "tree", "rf": "tree", "mlp": "mlp"}[mechanism]
    key = jax.random.key(seed)
    truth = jaxscm.random_scm(
        key, nodes, mechanism=family, edge_prob=0.3, max_parents=4
    )
    x = np.asarray(jaxscm.sample(jax.random.fold_in(key, 1), truth, n_fit), np.float64)
    df = pd.DataFrame(x, columns=list(truth.nodes))
    graph = nx.DiGraph()
    graph.add_nodes_from(truth.nodes)
    graph.add_edges_from(
        (truth.nodes[j], truth.nodes[i])
        for i, pa in enumerate(truth.parents)
        for j in pa
    )
    model = gcm.StructuralCausalModel(graph)
    make = _factory(mechanism)
    for i, name in enumerate(truth.nodes):
        # linear: Gaussian noise everywhere (the linear-Gaussian case whose roofline is
        # the RNG); others: DoWhy's default empirical noise
        def noise():
            return (
                gcm.ScipyDistribution(stats.norm)
                if mechanism == "linear"
                else gcm.EmpiricalDistribution()
            )

        if truth.parents[i]:
            model.set_causal_mechanism(name, gcm.AdditiveNoiseModel(make(), noise()))
        else:
            model.set_causal_mechanism(name, noise())
    t = _now()
    with seeded_numpy(seed), warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # MLP convergence warnings: speed, not fit, matters
        gcm.fit(model, df)
    fit_s = _now() - t
    scm = jaxscm.distill(model)
    return Case(f"{mechanism}-{nodes}", nodes, mechanism, scm, model, fit_s)


def fit_table_case(seed: int, name: str = "credit-g") -> Case:
    """A DoWhy model fitted on a real table (jaxscm.fit, 'fast' mechanisms)."""
    import jaxscm
    from benchmarks.datasets import load_dataset

    x, y, _ = load_dataset(name)
    df = x.assign(target=y.astype(str).to_numpy())
    d = df.shape[1]
    rng = np.random.default_rng(seed)
    # A random DAG in table order (<= 3 parents, the target gets 3): what is timed is
    # sampling the fitted mechanisms (linear/logistic or HGB, chosen per node by
    # jaxscm.fit), not the quality of the graph.
    adj = np.zeros((d, d), bool)
    for j in range(1, d):
        k = 3 if j == d - 1 else int(rng.integers(0, 4))
        adj[rng.choice(j, size=min(k, j), replace=False), j] = True
    t = _now()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = jaxscm.fit(df, adj, target="target", mechanisms="fast", seed=seed)
    fit_s = _now() - t
    scm = jaxscm.distill(model)
    return Case(f"table:{name}", d, "fast", scm, model, fit_s)


# --- measurements -------------------------------------------------------------------


def measure_case(case: Case, cfg: dict[str, Any], key_impls: tuple[str, ...]) -> None:
    """Fills `case.rates` for jaxscm (per key impl), ensemble, DoWhy and NumPy."""
    import jax
    from dowhy import gcm

    import jaxscm
    from benchmarks._numpy_scm import numpy_sample

    d, budget = case.nodes, cfg["budget"]
    fn = jax.jit(jaxscm.sample, static_argnums=2)

    for impl in key_impls:
        key = jax.random.key(0, impl=impl)

        def run(n: int, key: jax.Array = key) -> float:
            return _steady(
                lambda: fn(key, case.scm, n).block_until_ready(), budget, warm=True
            )

        def comp(n: int, key: jax.Array = key) -> float:
            t = _now()
            fn(key, case.scm, n).block_until_ready()
            return max(_now() - t - run(n), 0.0)

        label = "jaxscm" if impl == "threefry2x32" else f"jaxscm[{impl}]"
        _record(case, label, *_grid(cfg["ns"], d, cfg, run, compile_fn=comp))

    ens = jaxscm.stack([case.scm] * ENSEMBLE_K)
    key = jax.random.key(0)

    def run_ens(n: int) -> float:
        return _steady(
            lambda: fn(key, ens, n // ENSEMBLE_K).block_until_ready(), budget, warm=True
        )

    def comp_ens(n: int) -> float:
        t = _now()
        fn(key, ens, n // ENSEMBLE_K).block_until_ready()
        return max(_now() - t - run_ens(n), 0.0)

    _record(case, "ensemble", *_grid(cfg["ns"], d, cfg, run_ens, compile_fn=comp_ens))

    def run_dowhy(n: int) -> float:
        gcm.draw_samples(case.gcm_model, min(n, 1000))  # warm pandas/sklearn paths
        return _steady(lambda: gcm.draw_samples(case.gcm_model, n), budget)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _record(case, "DoWhy", *_grid(cfg["ns"], d, cfg, run_dowhy))

    rng = np.random.default_rng(0)
    try:
        numpy_sample(case.scm, 16, rng)
    except NotImplementedError as err:
        case.skipped["NumPy"] = str(err)
    else:
        _record(
            case,
            "NumPy",
            *_grid(
                cfg["ns"],
                d,
                cfg,
                lambda n: _steady(lambda: numpy_sample(case.scm, n, rng), budget),
            ),
        )


def _record(
    case: Case, label: str, rates: dict[int, float], compile_s: float | None, stop: str
) -> None:
    case.rates[label] = rates
    if compile_s is not None:
        case.compile_s[label] = compile_s
    if stop:
        case.skipped[label] = stop
    best = max(rates.values()) if rates else float("nan")
    print(
        f"  {case.name:>16s} {label:22s} best {best / 1e6:8.3f} M rows/s over "
        f"n={sorted(rates)}" + (f"  [{stop}]" if stop else ""),
        flush=True,
    )


def rooflines(d: int, cfg: dict[str, Any]) -> dict[str, dict[int, float]]:
    """rows/s of writing (n, d) float32 and of drawing (n, d) normals per PRNG."""
    import jax
    import jax.numpy as jnp

    out: dict[str, dict[int, float]] = {}
    fill = jax.jit(lambda c, n: jnp.full((n, d), c, jnp.float32), static_argnums=1)
    normal = jax.jit(lambda k, n: jax.random.normal(k, (n, d)), static_argnums=1)
    targets = {"write": lambda n: fill(jnp.float32(1.0), n)}
    for impl in ("threefry2x32", "rbg", "unsafe_rbg"):
        key = jax.random.key(0, impl=impl)
        targets[f"rng:{impl}"] = lambda n, key=key: normal(key, n)
    for name, f in targets.items():

        def run(n: int, f: Callable[[int], Any] = f) -> float:
            f(n).block_until_ready()  # compile / warm
            return _steady(lambda: f(n).block_until_ready(), cfg["budget"])

        out[name] = _grid(cfg["ns"], d, cfg, run)[0]
    return out


def small_batch(
    mechanism: str, nodes: int, cfg: dict[str, Any], seed: int
) -> dict[str, Any]:
    """CausalMixFT's call, 8 DAGs x 512 fresh rows: jaxscm vs 8 DoWhy models."""
    import jax
    from dowhy import gcm

    import bridge
    import jaxscm

    cases = [fit_case(nodes, mechanism, seed + 101 * b, cfg["n_fit"]) for b in range(8)]
    ens = jaxscm.stack([c.scm for c in cases])
    # The plain call, as the README and the fine-tuner make it: it compiles once per
    # structure and takes the ensemble's sampler plan stacked on the host. Under a
    # jit of one's own the plan is stacked inside the program, on every call.
    fn = jaxscm.sample
    key = jax.random.key(seed)
    t = _now()
    fn(key, ens, 512).block_until_ready()
    compile_s = _now() - t
    calls = cfg["calls"]
    t = _now()
    for i in range(calls):
        fn(jax.random.fold_in(key, i), ens, 512).block_until_ready()
    jax_cps = calls / (_now() - t)
    stream = bridge.stream(key, ens, 512, as_torch=True)
    next(stream)
    t = _now()
    for _ in range(calls):
        next(stream)
    stream_cps = calls / (_now() - t)
    dowhy_calls = max(3, calls // 20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for c in cases:
            gcm.draw_samples(c.gcm_model, 512)
        t = _now()
        for _ in range(dowhy_calls):
            for c in cases:
                gcm.draw_samples(c.gcm_model, 512)
        dowhy_cps = dowhy_calls / (_now() - t)
    res = {
        "case": f"{mechanism}-{nodes}",
        "dags": 8,
        "rows_per_dag": 512,
        "jaxscm_calls_per_s": jax_cps,
        "jaxscm_stream_torch_calls_per_s": stream_cps,
        "dowhy_calls_per_s": dowhy_cps,
        "ratio": jax_cps / dowhy_cps,
        "compile_s": compile_s,
        "distinct_dags": len({c.scm.parents for c in cases}),
    }
    print(
        f"  small batch {res['case']}: jaxscm {jax_cps:.0f} calls/s (stream->torch "
        f"{stream_cps:.0f}), DoWhy {dowhy_cps:.2f} calls/s, x{res['ratio']:.0f}",
        flush=True,
    )
    return res


def run(
    *,
    quick: bool,
    out: Path,
    budget: float | None = None,
    parquet: bool = True,
    seed: int = 0,
    command: str = "",
) -> dict[str, Any]:
    """Runs the grid and writes throughput.json / throughput.md under `out`."""
    import jax

    cfg = dict(QUICK if quick else FULL)
    if budget is not None:
        cfg["budget"] = budget
    t0 = _now()
    out.mkdir(parents=True, exist_ok=True)
    env = environment()
    print(
        f"throughput benchmark ({'quick' if quick else 'full'}): {env['device']}, "
        f"jax {env['versions']['jax']}, dowhy {env['versions']['dowhy']}, load "
        f"{env['loadavg_start']}",
        flush=True,
    )
    cases: list[Case] = []
    for d in cfg["nodes"]:
        for mech in cfg["mechanisms"]:
            print(f"fitting {mech}-{d} ...", flush=True)
            cases.append(fit_case(d, mech, seed + d, cfg["n_fit"]))
    print("fitting table:credit-g ...", flush=True)
    cases.append(fit_table_case(seed))
    roofs = {}
    for d in sorted({c.nodes for c in cases}):
        roofs[str(d)] = rooflines(d, cfg)
        print(
            f"  rooflines d={d}: "
            + ", ".join(
                f"{k} {max(v.values()) / 1e6:.1f}" for k, v in roofs[str(d)].items()
            )
            + " M rows/s",
            flush=True,
        )
    for c in cases:
        impls = (
            ("threefry2x32", "rbg", "unsafe_rbg")
            if c.mechanism == "linear"
            else ("threefry2x32",)
        )
        measure_case(c, cfg, impls)
        jax.clear_caches()  # compiled programs of earlier cases are not needed again
    small = [small_batch("linear", 30, cfg, seed)]
    if not quick:
        small.append(small_batch("hgb", 10, cfg, seed))
    lat = None if quick else latency(seed, small)
    pq = parquet_rss(cfg["parquet_rows"], 1_000_000, out) if parquet else None
    headline = 1_000_000 if not quick else max(cfg["ns"])
    record = {
        "mode": "quick" if quick else "full",
        "command": command
        or "causalmixft bench throughput" + (" --quick" if quick else ""),
        "config": cfg,
        "environment": env,
        "headline_n": headline,
        "cases": [
            {
                "name": c.name,
                "nodes": c.nodes,
                "mechanism": c.mechanism,
                "n_mechanisms": _describe(c.scm),
                "fit_s": c.fit_s,
                "rates": {
                    k: {str(n): r for n, r in v.items()} for k, v in c.rates.items()
                },
                "compile_s": c.compile_s,
                "skipped": c.skipped,
            }
            for c in cases
        ],
        "rooflines": {
            d: {k: {str(n): r for n, r in v.items()} for k, v in roof.items()}
            for d, roof in roofs.items()
        },
        "small_batch": small,
        "latency": lat,
        "parquet": pq,
        "loadavg_end": os.getloadavg(),
        "wall_s": _now() - t0,
    }
    _write(record, out)
    return record


def run_latency(*, out: Path, seed: int = 0, command: str = "") -> dict[str, Any]:
    """Measures only the small-batch and latency rows and puts them into the
    `throughput.json` already under `out` (its grid is kept, with its own date)."""
    path = out / "throughput.json"
    if not path.is_file():
        raise SystemExit(
            f"{path}: no throughput record to add the latency rows to; run the full "
            "benchmark first (without --latency-only)"
        )
    record = json.loads(path.read_text())
    env = environment()
    print(f"latency rows: {env['device']}, load {env['loadavg_start']}", flush=True)
    t0 = _now()
    cfg = dict(FULL)
    small = [small_batch("linear", 30, cfg, seed), small_batch("hgb", 10, cfg, seed)]
    record["small_batch"] = small
    record["latency"] = latency(seed, small)
    record["latency_run"] = {
        "command": command or "causalmixft bench throughput --latency-only",
        "environment": env,
        "loadavg_end": os.getloadavg(),
        "wall_s": _now() - t0,
    }
    _write(record, out)
    return record


def _write(record: dict[str, Any], out: Path) -> None:
    # markdown() reads rates keyed by int n
    for c in record["cases"]:
        c["rates"] = {
            k: {int(n): r for n, r in v.items()} for k, v in c["rates"].items()
        }
    for roof in record["rooflines"].values():
        for k in roof:
            roof[k] = {int(n): r for n, r in roof[k].items()}
    md = markdown(record)
    out.mkdir(parents=True, exist_ok=True)
    _atomic_write(out / "throughput.json", json.dumps(record, indent=1, default=str))
    _atomic_write(out / "throughput.md", md)
    print(md, flush=True)


def _atomic_write(path: Path, text: str) -> None:
    with atomic_write(path, "w") as f:
        f.write(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by `python -m benchmarks.throughput` and `causalmixft bench`."""
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small grid (~1-2 min): 10/30 nodes, linear+HGB, n<=1e5",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS,
        help="folder for throughput.json / throughput.md",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds one timed call may take before a grid stops",
    )
    parser.add_argument(
        "--no-parquet",
        dest="parquet",
        action="store_false",
        help="skip the write_parquet peak-RSS run",
    )
    parser.add_argument(
        "--latency-only",
        action="store_true",
        help="measure only the small-batch, compile, cached-compile and fit-time rows "
        "(~10 min) and add them to the throughput.json already in --out",
    )
    parser.add_argument("--seed", type=int, default=0)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m benchmarks.throughput`."""
    __import__("jaxscm").enable_compilation_cache()  # README: CAUSALMIXFT_JAX_CACHE
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    cmd = "python -m benchmarks.throughput " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    if args.latency_only:
        run_latency(out=args.out, seed=args.seed, command=cmd.strip())
        return 0
    run(
        quick=args.quick,
        out=args.out,
        budget=args.budget,
        parquet=args.parquet,
        seed=args.seed,
        command=cmd.strip(),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
