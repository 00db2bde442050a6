"""Rows/s of `jaxscm.sample` on a 30-node linear-Gaussian SCM (the core's headline).

Run: ``OMP_NUM_THREADS=1 python -m benchmarks.linear_gaussian [--nodes N --rows N]``.
The sampler is jitted once; the first call (compilation included) is reported apart
and the rate is over warm calls, each ended with ``block_until_ready``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import jax

import jaxscm


def measure(n_nodes: int, n_rows: int, repeats: int) -> dict[str, float]:
    """Times `repeats` warm calls; returns best and median rows/s and the first call."""
    scm = jaxscm.random_scm(
        jax.random.key(0), n_nodes, mechanism="linear", noise="gaussian"
    )
    sample = jax.jit(jaxscm.sample, static_argnums=2)
    t0 = time.perf_counter()
    sample(jax.random.key(1), scm, n_rows).block_until_ready()
    first = time.perf_counter() - t0
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        sample(jax.random.key(2 + i), scm, n_rows).block_until_ready()
        times.append(time.perf_counter() - t0)
    return {
        "best_rows_per_s": n_rows / min(times),
        "median_rows_per_s": n_rows / statistics.median(times),
        "first_call_s": first,
    }


def main() -> None:
    """Prints the measurement with the device and versions."""
    __import__("jaxscm").enable_compilation_cache()  # README: CAUSALMIXFT_JAX_CACHE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=30)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    r = measure(args.nodes, args.rows, args.repeats)
    print(
        f"jax {jax.__version__} on {jax.devices()[0]} ({platform.machine()}); "
        f"{args.nodes}-node linear-Gaussian SCM, {args.rows:,} rows: "
        f"{r['best_rows_per_s']:,.0f} rows/s best, "
        f"{r['median_rows_per_s']:,.0f} median of {args.repeats} warm calls; "
        f"first call incl. compile {r['first_call_s']:.2f} s"
    )


if __name__ == "__main__":
    main()
