"""The paper's study: a resumable grid on Ray, its metrics and its reports.

    causalmixft bench paper|imbalanced|convergence --profile quick|full
        [--ray] [--address A] [--out DIR] [--dry-run] [--retry-errors]

A cell is (study, dataset, method, n_train, seed); a `Profile` lists a study's axes
and its frozen fine-tuning settings (`profile`). `run_grid` runs the pending cells
(serially, or one Ray task per cell) and appends one JSON line per finished cell to
``<out>/records.jsonl`` (`read_records` validates them); `build_report` writes
``<out>/report.md`` and its PNGs. Default ``<out>``:
``benchmarks/results/study/<study>/<profile>``. Metric definitions:
`benchmarks.study.metrics`.
"""

from __future__ import annotations

from benchmarks.study._grid import default_out, estimate, pending, run_grid
from benchmarks.study._profiles import (
    GENERATORS,
    STUDIES,
    ZERO_SHOT,
    Cell,
    Method,
    Profile,
    profile,
)
from benchmarks.study._records import RecordError, read_records
from benchmarks.study.report import build_report

__all__ = [
    "GENERATORS",
    "STUDIES",
    "ZERO_SHOT",
    "Cell",
    "Method",
    "Profile",
    "RecordError",
    "build_report",
    "default_out",
    "estimate",
    "pending",
    "profile",
    "read_records",
    "run_grid",
]
