"""The throughput benchmark's latency rows: what a user waits on besides sampling.

Each row is a ratio against its baseline, both measured in the same run:

* compile: the first and the second plain `jaxscm.sample` call of the fitted credit-g
  8-DAG ensemble (8 x 512 rows) against the op-by-op body those calls ran before the
  entry points compiled themselves (`benchmarks.compile_time`, run as a child process
  with the persistent cache off in its own process);
* cached compile: the first call in a fresh process with the persistent compilation
  cache warm against the same call with an empty cache folder
  (`benchmarks.compile_time` child processes);
* small batches: 8 DAGs x 512 rows per call, jaxscm against 8 DoWhy `draw_samples`
  (`benchmarks.throughput.small_batch`, the linear-30 and HGB-10 cases);
* fit time: `jaxscm.fit_scm` on the 1,000-row credit-g table with `n_jobs=2` against
  the serial fit (`n_jobs=1`) of the same seed, each in a fresh process with the
  compilation cache off, with the stage timings, and whether the two models draw the
  same rows.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def compile_rows(seed: int, rows: int = 512, calls: int = 10) -> dict[str, Any]:
    """Plain vs op-by-op calls, cold vs cached processes: `benchmarks.compile_time`
    in a child process, whose own process keeps the persistent cache off (this
    process may have it on, which would turn the "first call" into a cache load)."""
    work = Path(tempfile.mkdtemp(prefix="causalmixft-latency-"))
    try:
        cmd = [sys.executable, "-m", "benchmarks.compile_time", "--rows", str(rows)]
        cmd += ["--calls", str(calls), "--seed", str(seed), "--out", str(work)]
        subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=3600)
        record = json.loads((work / "compile_time.json").read_text())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    here, procs = record["in_process"], record["processes"]
    cold, cached = procs["cold"], procs["cached"]
    res = {
        "case": f"credit-g 128 rows, fit_scm 8 DAGs, sample 8 x {rows}",
        "fit_s": record["fit_scm_s"],
        "in_process": here,
        "cold": cold,
        "cached": cached,
        "same_rows": cold["rows_sha"] == cached["rows_sha"],
    }
    print(
        f"  compile: op by op first {here['before_first_s']:.1f} s, plain first "
        f"{here['plain_first_s']:.1f} s, second {here['plain_second_s'] * 1e3:.0f} ms; "
        f"new process cold {cold['first_call_s']:.1f} s, cached "
        f"{cached['first_call_s']:.1f} s",
        flush=True,
    )
    return res


def fit_rows(seed: int, rows: int = 1000, dataset: str = "credit-g") -> dict[str, Any]:
    """fit_scm serial vs two worker processes on one table, same seed.

    Each fit runs in a fresh process with the persistent compilation cache off, so
    neither profits from programs the other compiled (the fit compiles the sampler
    for the class-share calibration)."""
    res: dict[str, Any] = {}
    for jobs in (1, 2):
        env = {**os.environ, "CAUSALMIXFT_JAX_CACHE": "off"}
        cmd = [sys.executable, "-m", "benchmarks._throughput_latency", "--fit-child"]
        cmd += [dataset, str(rows), str(jobs), str(seed)]
        out = subprocess.run(
            cmd, env=env, capture_output=True, text=True, check=True, timeout=3600
        )
        child = json.loads(out.stdout.strip().splitlines()[-1])
        res["case"] = child.pop("case")
        res[f"n_jobs_{jobs}"] = child
        print(f"  fit_scm {res['case']}, n_jobs={jobs}: {child['wall_s']:.1f} s")
    res["same_model"] = res["n_jobs_1"]["rows_sha"] == res["n_jobs_2"]["rows_sha"]
    return res


def _fit_child(dataset: str, rows: int, jobs: int, seed: int) -> dict[str, Any]:
    import jax

    import jaxscm
    from benchmarks.datasets import load_dataset

    jaxscm.enable_compilation_cache()  # off: CAUSALMIXFT_JAX_CACHE set by the parent
    X, y, _ = load_dataset(dataset)
    df = X.assign(**{"__target__": y}).iloc[:rows]
    t = time.perf_counter()
    model = jaxscm.fit_scm(df, "__target__", seed=seed, progress=False, n_jobs=jobs)
    wall = time.perf_counter() - t
    x = np.asarray(jaxscm.sample(jax.random.key(0), model, 256))
    return {
        "case": f"{dataset} {df.shape[0]} x {df.shape[1] - 1}",
        "wall_s": wall,
        "timings": dict(model.info.timings),
        "rows_sha": hashlib.sha256(x.tobytes()).hexdigest()[:16],
    }


def latency(
    seed: int, small: list[dict[str, Any]], *, fit_rows_n: int = 1000
) -> dict[str, Any]:
    """All latency rows; `small` are `throughput.small_batch` results of this run."""
    return {
        "compile": compile_rows(seed),
        "small_batch": small,
        "fit": fit_rows(seed, fit_rows_n),
    }


def _ratio(base: float, new: float) -> str:
    return f"{base / new:.1f}x" if new > 0 else "n/a"


def markdown(lat: dict[str, Any]) -> list[str]:
    """The latency table (rows of the throughput report)."""
    c, f = lat["compile"], lat["fit"]
    h, cold, cached = c["in_process"], c["cold"], c["cached"]
    lines = [
        "",
        "What a user waits on besides sampling, each against its baseline in the same "
        f"run ({c['case']}; fit {f['case']}):",
        "",
        "| row | baseline | baseline s | now | now s | ratio |",
        "|---|---|---|---|---|---|",
        f"| first call in a process | op by op | {h['before_first_s']:.2f} | plain "
        f"`jaxscm.sample` (compiles) | {h['plain_first_s']:.2f} | "
        f"{_ratio(h['before_first_s'], h['plain_first_s'])} |",
        f"| second call, another key | op by op | {h['before_second_s']:.2f} | plain "
        f"`jaxscm.sample` | {h['plain_second_s']:.3f} | "
        f"{_ratio(h['before_second_s'], h['plain_second_s'])} |",
        f"| first call in a new process | empty cache folder | "
        f"{cold['first_call_s']:.2f} | warm persistent cache | "
        f"{cached['first_call_s']:.2f} | "
        f"{_ratio(cold['first_call_s'], cached['first_call_s'])} |",
        f"| XLA compile of that call | empty cache folder | {cold['compile_s']:.2f} | "
        f"warm persistent cache (load) | {cached['compile_s']:.2f} | "
        f"{_ratio(cold['compile_s'], cached['compile_s'])} |",
    ]
    for s in lat["small_batch"]:
        lines.append(
            f"| 8 x 512 call, {s['case']} | 8 DoWhy draw_samples | "
            f"{1 / s['dowhy_calls_per_s']:.3f} | plain `jaxscm.sample` | "
            f"{1 / s['jaxscm_calls_per_s']:.4f} | {s['ratio']:.0f}x |"
        )
    one, two = f["n_jobs_1"], f["n_jobs_2"]
    lines.append(
        f"| fit_scm, {f['case']} | n_jobs=1 | {one['wall_s']:.1f} | n_jobs=2 | "
        f"{two['wall_s']:.1f} | {_ratio(one['wall_s'], two['wall_s'])} |"
    )
    stages = ", ".join(
        f"{k} {one['timings'][k]:.1f} / {two['timings'].get(k, float('nan')):.1f}"
        for k in one["timings"]
        if k != "total"
    )
    lines += [
        "",
        f"fit_scm stages, seconds, n_jobs=1 / 2: {stages}. Same rows from both fits: "
        f"{f['same_model']}. Cold and cached processes drew the same rows: "
        f"{c['same_rows']}; compilations after the first plain call: "
        f"{h['compiles_after_first']}.",
    ]
    return lines


if __name__ == "__main__":
    if sys.argv[1:2] != ["--fit-child"] or len(sys.argv) != 6:
        raise SystemExit(
            "usage: python -m benchmarks._throughput_latency --fit-child DATASET ROWS "
            "N_JOBS SEED (the throughput benchmark's fit-time child process)"
        )
    name, n, j, s = sys.argv[2:]
    print(json.dumps(_fit_child(name, int(n), int(j), int(s))))
