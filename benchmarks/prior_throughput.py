"""Throughput of the random-SCM prior (`jaxscm.prior.sample_prior`), jit + vmap.

    OMP_NUM_THREADS=1 python -m benchmarks.prior_throughput --batch 8 --rows 384
    OMP_NUM_THREADS=1 python -m benchmarks.prior_throughput --prior v2 --batch 8

Prints compile time, datasets/s and rows/s (median of timed calls, after warm-up,
with `block_until_ready`), and the device and versions. `--prior v2` times
`jaxscm.prior.PRIOR_V2` (100 feature columns, 112 nodes) with `--rows` rows; the
trainer needs one batch per optimisation step, so datasets/s / batch is the most
steps/s the prior can feed (compare with the steps/s in the model card).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import jax
import numpy as np

from jaxscm.prior import PRIOR_V2, PriorConfig, sample_prior


def main(argv: list[str] | None = None) -> int:
    """Times `sample_prior` and prints one JSON line."""
    __import__("jaxscm").enable_compilation_cache()  # README: CAUSALMIXFT_JAX_CACHE
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8, help="datasets per call")
    p.add_argument("--rows", type=int, default=384, help="rows per dataset")
    p.add_argument("--prior", choices=["v1", "v2"], default="v1")
    p.add_argument("--features", type=int, default=None, help="v1 only (default 16)")
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args(argv)
    if args.prior == "v2":
        if args.features is not None:
            p.error("--features is fixed by PRIOR_V2 (100)")
        cfg = dataclasses.replace(PRIOR_V2, n_rows=args.rows)
    else:
        cfg = PriorConfig(n_rows=args.rows, max_features=args.features or 16)
    gen = jax.jit(sample_prior, static_argnums=(1, 2))
    key = jax.random.key(0)
    t0 = time.perf_counter()
    jax.block_until_ready(gen(key, args.batch, cfg))
    compile_s = time.perf_counter() - t0
    times = []
    for i in range(args.repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(gen(jax.random.fold_in(key, i + 1), args.batch, cfg))
        times.append(time.perf_counter() - t0)
    t = float(np.median(times))
    print(
        json.dumps(
            {
                "batch": args.batch,
                "rows": args.rows,
                "prior": args.prior,
                "max_features": cfg.max_features,
                "nodes": cfg.n_nodes,
                "compile_s": round(compile_s, 2),
                "s_per_batch": round(t, 4),
                "datasets_per_s": round(args.batch / t, 1),
                "rows_per_s": round(args.batch * args.rows / t),
                "steps_per_s_fed": round(1.0 / t, 2),
                "device": str(jax.devices()[0]),
                "jax": jax.__version__,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
