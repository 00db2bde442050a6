"""``causalmixft bench throughput|paper|imbalanced|convergence|select-ft|select-mix``.

``throughput`` is the sampling-throughput benchmark; ``paper``, ``imbalanced`` and
``convergence`` are the study's grids, ``select-ft`` and ``select-mix`` the two
stages of its selection protocol (`benchmarks.study`).

The declared exception, with `demo`: this module imports `benchmarks` (lazily, inside
the functions), the benchmark being a script of that package.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers ``bench <name>`` and the benchmark's flags."""
    from benchmarks.study._cli import add_arguments as study_arguments
    from benchmarks.study._profiles import STUDIES
    from benchmarks.throughput import add_arguments as throughput_arguments

    parser.add_argument(
        "name",
        choices=["throughput", *STUDIES],
        help="which benchmark to run",
    )
    throughput_arguments(parser)
    study_arguments(parser)
    # --out is shared: each benchmark has its own default folder
    parser.set_defaults(out=None)


def run(args: argparse.Namespace) -> int:
    """Runs the benchmark; results go to ``--out``."""
    command = "causalmixft bench " + " ".join(
        sys.argv[2:] if len(sys.argv) > 2 else [args.name]
    )
    from benchmarks.study._profiles import STUDIES

    if args.name in STUDIES:
        from benchmarks.study._cli import run as run_study

        return run_study(args, command)
    from benchmarks import throughput

    throughput.run(
        quick=args.quick,
        out=args.out if args.out is not None else throughput.RESULTS,
        budget=args.budget,
        parquet=args.parquet,
        seed=args.seed,
        command=command,
    )
    return 0
