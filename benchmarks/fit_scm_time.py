"""Time `jaxscm.fit_scm` stage by stage on a real table.

    OMP_NUM_THREADS=1 python -m benchmarks.fit_scm_time [--n-jobs 2]

Prints the table shape, the stage timings (schema, discovery, DAG sampling, DoWhy fit,
distillation, stacking), the mechanisms chosen and the first-sample compile time, with
the library versions. Defaults are `fit_scm`'s own (8 graphs, 20 PC resamples, "fast").
"""

from __future__ import annotations

import argparse
import collections
import time


def main() -> None:
    """Runs the timing and prints it."""
    __import__("jaxscm").enable_compilation_cache()  # README: CAUSALMIXFT_JAX_CACHE
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="credit-g")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--n-dags", type=int, default=8)
    parser.add_argument("--n-bootstrap", type=int, default=20)
    parser.add_argument("--method", default="pc")
    parser.add_argument("--mechanisms", default="fast")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--n-jobs", type=int, default=None, help="worker processes (default: fit_scm's)"
    )
    args = parser.parse_args()

    import causallearn
    import dowhy
    import jax
    import sklearn

    import jaxscm
    from benchmarks.datasets import load_dataset

    X, y, _ = load_dataset(args.dataset)
    df = X.assign(**{"__target__": y}).iloc[: args.rows]
    model = jaxscm.fit_scm(
        df,
        "__target__",
        n_dags=args.n_dags,
        discovery=jaxscm.DiscoveryOptions(
            method=args.method, n_bootstrap=args.n_bootstrap
        ),
        mechanisms=args.mechanisms,
        seed=args.seed,
        progress=False,
        n_jobs=args.n_jobs,
    )
    info = model.info
    kinds = collections.Counter(c.kind for c in info.columns)
    chosen = collections.Counter(v for m in info.mechanisms for v in m.values())
    t = info.timings
    print(
        f"{args.dataset}: {df.shape[0]} rows x {df.shape[1]} columns "
        f"(incl. target) {dict(kinds)}"
    )
    print(
        f"options: n_dags={args.n_dags} n_bootstrap={args.n_bootstrap} "
        f"method={args.method} mechanisms={args.mechanisms} seed={args.seed} "
        f"n_jobs={args.n_jobs}"
    )
    print("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in t.items()))
    print(
        f"node mechanisms over all graphs: {dict(chosen)}; "
        f"edges per graph {info.dags.sum(axis=(1, 2)).tolist()}"
    )
    sample = jax.jit(jaxscm.sample, static_argnums=2)
    t0 = time.perf_counter()
    sample(jax.random.key(0), model, 1000).block_until_ready()
    t1 = time.perf_counter()
    sample(jax.random.key(1), model, 1000).block_until_ready()
    t2 = time.perf_counter()
    print(
        f"sample {args.n_dags}x1000 rows: first call (compile) {t1 - t0:.2f} s, "
        f"then {t2 - t1:.3f} s"
    )
    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform}, "
        f"dowhy {dowhy.__version__}, causal-learn "
        f"{getattr(causallearn, '__version__', '?')}, sklearn {sklearn.__version__}"
    )


if __name__ == "__main__":
    main()
