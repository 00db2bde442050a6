"""``causalmixft bench throughput``: the sampling-throughput benchmark.

The declared exception, with `demo`: this module imports `benchmarks` (lazily, inside
the functions), the benchmark being a script of that package.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers ``bench <name>`` and the benchmark's flags."""
    from benchmarks.throughput import add_arguments as throughput_arguments

    parser.add_argument("name", choices=["throughput"], help="which benchmark to run")
    throughput_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Runs the benchmark; results go to ``--out`` (throughput.json / .md)."""
    from benchmarks import throughput

    command = "causalmixft bench " + " ".join(
        sys.argv[2:] if len(sys.argv) > 2 else ["throughput"]
    )
    throughput.run(
        quick=args.quick,
        out=args.out,
        budget=args.budget,
        parquet=args.parquet,
        seed=args.seed,
        command=command,
    )
    return 0
