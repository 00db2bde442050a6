"""Distillation fidelity and cost: per-mechanism errors and a 20-node distill time.

    OMP_NUM_THREADS=1 python -m benchmarks.distill_report [--nodes 20] [--rows 1000]

Part 1 runs every case of tests/equivalence/test_deterministic.py (the same DoWhy
models, parents and noise) and prints the largest absolute and relative error of the
distilled mechanism against DoWhy's `evaluate` (relative errors are large only where
a value is close to 0, so the absolute error over the largest |y| is printed too;
classifiers: largest probability error and the share of rows whose drawn class
differs). Part 2 fits a random DoWhy
model with `--nodes` columns (a quarter categorical, the target categorical; linear
and HistGradientBoosting mechanisms alternating) to a synthetic table and times
`jaxscm.distill` on it, with the library versions.
"""

from __future__ import annotations

import argparse
import time
import warnings


def _errors() -> None:
    import jax

    import jaxscm
    from tests.equivalence import test_deterministic as eq

    print(
        f"{'case':28s} {'max_abs':>10s} {'max_rel':>10s} {'abs/max|y|':>10s} "
        f"{'class_mismatch':>15s}"
    )
    for name, parents, factory, data_fn in eq.CASES:
        model = eq.fit_case(parents, factory, data_fn, seed=0)
        scm = jaxscm.distill(model, dtype=eq.DTYPE)
        e = eq.compare_node(model, scm, "y", seed=1)
        rel = f"{e['max_rel']:10.2e}" if "max_rel" in e else f"{'-':>10s}"
        scaled = f"{e['max_scaled']:10.2e}" if "max_scaled" in e else f"{'-':>10s}"
        mis = f"{e['class_mismatch']:15.4f}" if "class_mismatch" in e else f"{'-':>15s}"
        print(f"{name:28s} {e['max_abs']:10.2e} {rel} {scaled} {mis}")
    print(
        f"dtype {eq.DTYPE.__name__}, {eq.N_EVAL} rows per case, jax {jax.__version__}"
    )


def _twenty(nodes: int, rows: int, seed: int) -> None:
    import dowhy
    import networkx as nx
    import numpy as np
    import pandas as pd
    import sklearn
    from dowhy import gcm
    from sklearn.exceptions import ConvergenceWarning

    import jaxscm

    gcm.config.disable_progress_bars()
    rng = np.random.default_rng(seed)
    names = [f"x{i}" for i in range(nodes - 1)] + ["target"]
    categorical = {names[i] for i in range(0, nodes - 1, 4)} | {"target"}
    graph = nx.DiGraph()
    graph.add_nodes_from(names)
    for j in range(1, nodes):
        for i in rng.choice(j, size=min(j, 3), replace=False):
            graph.add_edge(names[i], names[j])
    data: dict[str, np.ndarray] = {}
    for v in names:
        pa = list(graph.predecessors(v))
        signal = sum(
            np.sin(
                np.asarray(
                    pd.factorize(data[p])[0] if p in categorical else data[p], float
                )
            )
            for p in pa
        )
        value = signal + rng.normal(size=rows)
        if v in categorical:
            k = 2 if v == "target" else 3
            cuts = np.quantile(value, np.linspace(0, 1, k + 1)[1:-1])
            data[v] = np.array([f"{v}_{c}" for c in range(k)])[np.digitize(value, cuts)]
        else:
            data[v] = value
    df = pd.DataFrame(data)
    model = gcm.StructuralCausalModel(graph)
    kinds: dict[str, int] = {}
    for j, v in enumerate(names):
        hgb = j % 2 == 1
        if graph.in_degree(v) == 0:
            mech = gcm.EmpiricalDistribution()
        elif v in categorical:
            mech = gcm.ClassifierFCM(
                gcm.ml.create_hist_gradient_boost_classifier()
                if hgb
                else gcm.ml.create_logistic_regression_classifier()
            )
        else:
            mech = gcm.AdditiveNoiseModel(
                gcm.ml.create_hist_gradient_boost_regressor()
                if hgb
                else gcm.ml.create_linear_regressor()
            )
        kinds[str(mech)] = kinds.get(str(mech), 0) + 1
        model.set_causal_mechanism(v, mech)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gcm.fit(model, df)
    t_fit = time.perf_counter() - t0
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        scm = jaxscm.distill(model)
        times.append(time.perf_counter() - t0)
    print(
        f"{nodes} nodes x {rows} rows, {graph.number_of_edges()} edges, "
        f"{len(categorical)} categorical; mechanisms {kinds}"
    )
    print(
        f"DoWhy gcm.fit {t_fit:.2f} s; jaxscm.distill {min(times):.3f} s "
        f"(min of 3; all {[round(t, 3) for t in times]})"
    )
    print(
        f"distilled: {scm.n_nodes} nodes; dowhy {dowhy.__version__}, "
        f"sklearn {sklearn.__version__}"
    )


def main() -> None:
    """Prints both parts."""
    __import__("jaxscm").enable_compilation_cache()  # README: CAUSALMIXFT_JAX_CACHE
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-errors", action="store_true")
    args = parser.parse_args()
    if not args.skip_errors:
        _errors()
    _twenty(args.nodes, args.rows, args.seed)


if __name__ == "__main__":
    main()
