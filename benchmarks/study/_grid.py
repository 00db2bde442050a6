"""Running a profile's cells: serially, or one Ray task per cell.

The driver reads the records file first (validating every line, see `_records`),
skips the cells that have a record, and appends each new record itself as its cell
finishes, so records of parallel cells never interleave and a killed grid (driver or
worker) resumes where it stopped: a cell is either recorded whole or run again.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.study._cell import run_cell
from benchmarks.study._profiles import Cell, Profile
from benchmarks.study._records import read_records, record_writer

RESULTS = Path(__file__).resolve().parents[1] / "results" / "study"
ROOT = Path(__file__).resolve().parents[2]


def default_out(profile: Profile) -> Path:
    """``benchmarks/results/study/<study>/<profile>``."""
    return RESULTS / profile.study / profile.name


def records_path(out: str | os.PathLike[str]) -> Path:
    """The records file of an output folder."""
    return Path(out) / "records.jsonl"


def pending(
    profile: Profile, out: str | os.PathLike[str], *, retry_errors: bool = False
) -> list[Cell]:
    """The cells of `profile` without a record in `out` (validated first).

    Raises:
      RecordError: the records file is damaged or from other settings.
    """
    done = read_records(records_path(out), profile.settings_sha256())
    skip = {r["key"] for r in done if r["status"] == "ok" or not retry_errors}
    return [c for c in profile.cells() if c.key not in skip]


def _drop_errors(path: Path, keys: set[str]) -> None:
    """Rewrites the records file without the error records of `keys` (atomically)."""
    import json

    from jaxscm import atomic_write

    if not path.exists():
        return
    # Under the lock, so a grid writing this file is not clobbered; the writer opened
    # afterwards appends to the new file.
    with record_writer(path):
        keep = [r for r in read_records(path) if r["key"] not in keys]
        with atomic_write(path, "w") as f:
            for r in keep:
                f.write(json.dumps(r, sort_keys=True, allow_nan=False) + "\n")


def run_grid(
    profile: Profile,
    out: str | os.PathLike[str] | None = None,
    *,
    ray: bool = False,
    address: str | None = None,
    retry_errors: bool = False,
    limit: int | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Runs every pending cell of `profile` and appends its record to `out`.

    Args:
      profile: the grid.
      out: output folder (default `default_out`); records go to ``records.jsonl``.
      ray: one Ray task per cell (``ray.init()`` local, or `address`).
      address: a Ray cluster to join (implies `ray`).
      retry_errors: run again the cells whose record has ``status="error"``.
      limit: run at most this many pending cells (a partial grid; resumable).
      on_record: called with each record after it is written.

    Returns:
      The records written by this call, in completion order.

    Raises:
      RecordError: the records file is damaged, from other settings, or locked
        by another grid.
      ValueError: `ray` or `address` without the ray package installed.
    """
    out = Path(out) if out is not None else default_out(profile)
    path = records_path(out)
    todo = pending(profile, out, retry_errors=retry_errors)
    if retry_errors:
        _drop_errors(path, {c.key for c in todo})
    todo = todo[:limit] if limit is not None else todo
    written: list[dict[str, Any]] = []
    with record_writer(path) as w:

        def emit(rec: dict[str, Any]) -> None:
            rec = w.append(rec)
            written.append(rec)
            _progress(rec, len(written), len(todo))
            if on_record is not None:
                on_record(rec)

        if ray or address:
            _run_ray(profile, todo, address, emit)
        else:
            sha = profile.settings_sha256()
            for cell in todo:
                method = profile.method(cell.method)
                split = dict(profile.split_options)
                emit(run_cell(cell, method, profile.settings, sha, split))
    return written


def _progress(rec: dict[str, Any], i: int, n: int) -> None:
    status = rec["status"]
    auc = (rec.get("metrics") or {}).get("test_roc_auc")
    tail = f"test ROC-AUC {auc:.4f}" if auc is not None else (rec["error"] or "")
    print(
        f"[{i}/{n}] {rec['key']}: {status}, {rec['timing']['wall_s']:.1f} s, {tail}",
        file=sys.stderr,
        flush=True,
    )


def _ray_init(address: str | None) -> Any:
    try:
        import ray
    except ImportError:
        # A ValueError: the command line reports it in one line, exit status 2.
        raise ValueError(
            "--ray needs the ray package (pip install 'ray[default]'); without "
            "--ray the grid runs serially with the same records"
        ) from None
    if not ray.is_initialized():
        # Workers import this checkout's packages and run one thread per cell; on a
        # cluster every node needs the same checkout at the same path.
        env = {
            "PYTHONPATH": str(ROOT),
            "OMP_NUM_THREADS": "1",
            "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu"),
        }
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": env},
        )
    return ray


def _run_ray(
    profile: Profile,
    todo: list[Cell],
    address: str | None,
    emit: Callable[[dict[str, Any]], None],
) -> None:
    ray = _ray_init(address)
    # max_retries: a killed worker's cell is run again, not lost (its record is
    # written only by this driver, once, when a run of it finishes).
    task = ray.remote(num_cpus=1, max_retries=3)(run_cell)
    sha = profile.settings_sha256()
    refs = {
        task.remote(
            c,
            profile.method(c.method),
            dict(profile.settings),
            sha,
            dict(profile.split_options),
        ): c
        for c in todo
    }
    while refs:
        done, _ = ray.wait(list(refs), num_returns=1)
        for ref in done:
            refs.pop(ref)
            emit(ray.get(ref))


def estimate(profile: Profile, out: str | os.PathLike[str], workers: int) -> str:
    """The dry run's text: cells, pending cells and projected hours."""
    todo = pending(profile, out)
    # ok records only: a cell that fails does so in a fraction of a second
    done = [r for r in read_records(records_path(out)) if r["status"] == "ok"]
    per_cell = profile.cell_seconds
    basis = f"{profile.cell_seconds:.0f} s per cell ({profile.measured})"
    if done:
        per_cell = sum(r["timing"]["wall_s"] for r in done) / len(done)
        basis = f"{per_cell:.0f} s per cell, the mean of the {len(done)} records so far"
    hours = len(todo) * per_cell / max(workers, 1) / 3600
    return (
        f"{profile.study}/{profile.name}: {len(profile.cells())} cells "
        f"({len(profile.datasets)} datasets x {len(profile.methods)} methods x "
        f"{len(profile.sizes)} sizes x {len(profile.seeds)} seeds), "
        f"{len(todo)} pending; estimate {hours:.2f} h on {workers} parallel "
        f"cell(s) = {len(todo) * per_cell / 3600:.1f} core-hours, at {basis}"
    )
