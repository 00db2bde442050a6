"""Worker processes for the fitting front end (discovery resamples, DoWhy node fits).

Both jobs are many independent, CPU-bound calls into causal-learn, sklearn and DoWhy
(Python-heavy, so threads would serialise on the GIL): joblib's process pool runs
them, and the caller gets the results in submission order, so a parallel run equals
the serial one. Each worker process pays once for importing those libraries (about
1-3 s), which is why small jobs stay in the calling process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any


def n_workers(n_jobs: int | None = None) -> int:
    """How many worker processes `n_jobs` means here.

    Args:
      n_jobs: a positive count, -1 for every CPU, or None for the default: the
        CPUs this process may use, at most 4 (more rarely pays off for tables of
        hundreds of rows), and 1 on machines with 2 CPUs or fewer: there, on a
        shared 2-core machine (load average 3.5), credit-g at 128 rows fitted in
        36.8 s with 2 workers against 31.0 s in one process (worker start-up and
        imports eat the gain when no core is idle).

    Returns:
      A count >= 1.

    Raises:
      ValueError: an `n_jobs` that is 0 or below -1.

    Examples:
      >>> n_workers(1)
      1
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    cpus = cpus or os.cpu_count() or 1
    if n_jobs is None:
        return 1 if cpus <= 2 else min(cpus, 4)
    if n_jobs == -1:
        return cpus
    if n_jobs < 1:
        raise ValueError(f"n_jobs must be >= 1, -1 (all CPUs) or None, got {n_jobs}")
    return int(n_jobs)


def parallel(
    workers: int, calls: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]]
) -> list[Any]:
    """Runs `fn(*args)` for each call on `workers` processes; results in call order."""
    if workers <= 1 or len(calls) <= 1:
        return [fn(*args) for fn, args in calls]
    import joblib

    # One thread per worker for BLAS/OpenMP: the workers already fill the CPUs.
    with joblib.parallel_config(backend="loky", inner_max_num_threads=1):
        run = joblib.Parallel(n_jobs=min(workers, len(calls)))
        return list(run(joblib.delayed(fn)(*args) for fn, args in calls))
