"""Measures one quick cell per study and prints the projected profile times.

    OMP_NUM_THREADS=1 python -m benchmarks.study.measure [--method causalmix]

Each study's first dataset and size, seed 0, under its quick settings; nothing is
written to the records. The measured seconds are what `_profiles._CELL_SECONDS`
holds (update them from this output).
"""

from __future__ import annotations

import argparse
import os

from benchmarks.study._cell import run_cell
from benchmarks.study._profiles import STUDIES, profile


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m benchmarks.study.measure`."""
    __import__("jaxscm").enable_compilation_cache()  # README: CAUSALMIXFT_JAX_CACHE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="causalmix")
    parser.add_argument("--studies", nargs="+", default=list(STUDIES))
    args = parser.parse_args(argv)
    for study in args.studies:
        quick = profile(study, "quick")
        d, n = quick.datasets[0], quick.sizes[0]
        cell = next(
            c
            for c in quick.cells()
            if (c.dataset, c.n_train, c.method) == (d, n, args.method)
        )
        rec = run_cell(
            cell,
            quick.method(cell.method),
            quick.settings,
            quick.settings_sha256(),
            quick.split_options,
        )
        s = rec["timing"]["wall_s"]
        print(
            f"{cell.key}: {rec['status']} {s:.1f} s (fit {rec['timing'].get('fit_s')}"
            f" s, SCM {rec['timing'].get('scm_s')} s), load "
            f"{rec['machine']['loadavg_start'][0]:.1f}",
            flush=True,
        )
        for name in ("quick", "full"):
            p = profile(study, name)
            cells = len(p.cells())
            print(
                f"  {study}/{name}: {cells} cells x {s:.0f} s = "
                f"{cells * s / 3600:.1f} core-hours; "
                f"{cells * s / 3600 / (os.cpu_count() or 1):.2f} h on "
                f"{os.cpu_count()} cores",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
