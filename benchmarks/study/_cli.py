"""Flags and entry of ``causalmixft bench paper|imbalanced|convergence``."""

from __future__ import annotations

import argparse
import os
import sys

from benchmarks.study._grid import default_out, estimate, run_grid
from benchmarks.study._profiles import REPORTED, profile
from benchmarks.study.report import build_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The study's flags (``--out`` is shared with the throughput benchmark)."""
    parser.add_argument(
        "--profile",
        choices=["quick", "full"],
        default="quick",
        help="study scale: quick (< 2 h on 2 cores) or full (the paper's, a cluster)",
    )
    parser.add_argument(
        "--ray", action="store_true", help="one Ray task per cell (ray.init() local)"
    )
    parser.add_argument(
        "--address",
        default=None,
        help="Ray cluster to join (e.g. HEAD_IP:6379 after `ray start --head`)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the cell count and the time estimate, run nothing",
    )
    parser.add_argument(
        "--retry-errors",
        action="store_true",
        help="run again the cells whose record holds an error",
    )
    parser.add_argument(
        "--report-only", action="store_true", help="rebuild the report from the records"
    )


def run(args: argparse.Namespace, command: str) -> int:
    """Runs (or estimates) the grid, then writes its report."""
    p = profile(args.name, args.profile)
    out = args.out if args.out is not None else default_out(p)
    workers = _workers(args)
    print(estimate(p, out, workers), flush=True)
    if args.dry_run:
        return 0
    if not args.report_only:
        run_grid(
            p, out, ray=args.ray, address=args.address, retry_errors=args.retry_errors
        )
    path = build_report(p, out, command=command)
    print(f"report: {path}", file=sys.stderr)
    if p.study not in REPORTED:  # a selection stage
        from benchmarks.study.select import build_selection_report

        try:
            path = build_selection_report(p, out, command=command)
        except ValueError as err:  # not every candidate has run yet
            print(f"no selection yet: {err}", file=sys.stderr)
        else:
            print(f"selection: {path}", file=sys.stderr)
    return 0


def _workers(args: argparse.Namespace) -> int:
    if not (args.ray or args.address):
        return 1
    if args.address:  # a cluster's size is known once joined; estimate per core
        return 1
    return os.cpu_count() or 1
