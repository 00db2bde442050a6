"""Scale-out of `causalmixft sample`: sharded datasets on 1 and 2 local Ray workers.

    python -m benchmarks.scale_out [--rows 2000000] [--shards 8] [--chunk 100000]

One model (a random linear SCM over 30 columns with a categorical target), one key,
three writers of the same rows:

* ``single file``: `bridge.write_samples` to one Parquet file in one process (what
  ``causalmixft sample -o file.parquet`` runs);
* ``dataset, 1 process``: `bridge.write_dataset(..., shards=K)` serially in one
  process (``--shards K`` without ``--ray``; the parts skip dictionary-encoding
  float columns, so this is the fair base for the Ray rows);
* ``ray-1`` / ``ray-2``: `bridge.write_dataset(..., shards=K, ray=True)` on a local
  Ray instance with 1 or 2 CPUs, one CPU per shard task, so 1 or 2 workers.

Each writer runs twice: ``cold`` (a fresh process or fresh Ray workers: start-up,
imports and the sampler's compile included) and ``warm`` (the same process or
workers again, into a new folder). Rows/s is rows / wall seconds of the call. Peak RSS
is each process's own high-water mark (VmHWM): the writer process, or every Ray
worker that ran a shard. The folders are checked equal to the single file. Results go
to ``benchmarks/results/scale_out.{json,md}``; the load average is printed, since
other jobs share the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

_SINGLE = r"""
import json, sys, time
import jax
import bridge
from jaxscm import random_scm
from benchmarks.scale_out import hwm
rows, chunk, out, shards = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
scm = random_scm(jax.random.key(0), 30, mechanism="linear", target=True)
walls = []
for name in ("cold", "warm"):
    t = time.perf_counter()
    if shards == "file":
        bridge.write_samples(f"{out}/{name}.parquet", jax.random.key(1), scm, rows,
                             chunk=chunk)
    else:
        bridge.write_dataset(f"{out}/serial-{name}", jax.random.key(1), scm, rows,
                             shards=int(shards), chunk=chunk)
    walls.append(time.perf_counter() - t)
print(json.dumps({"walls": walls, "peak_rss": hwm()}))
"""


def hwm() -> int:
    """This process's peak resident set in bytes (VmHWM; Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _single(rows: int, chunk: int, out: Path, shards: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", _SINGLE, str(rows), str(chunk), str(out), shards],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"workers": 1, "walls": res["walls"], "peak_rss": [res["peak_rss"]]}


def _worker_rss(ray: Any, workers: int) -> list[int]:
    @ray.remote(num_cpus=1)
    def report() -> tuple[int, int]:
        time.sleep(0.5)  # hold the CPU so each worker answers once
        return os.getpid(), hwm()

    seen = dict(ray.get([report.remote() for _ in range(workers)]))
    return sorted(seen.values(), reverse=True)


def _ray(workers: int, rows: int, shards: int, chunk: int, out: Path) -> dict:
    import jax
    import ray

    import bridge
    from jaxscm import random_scm

    scm = random_scm(jax.random.key(0), 30, mechanism="linear", target=True)
    env = {"PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu", "OMP_NUM_THREADS": "1"}
    ray.init(
        num_cpus=workers,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": env},
    )
    try:
        walls = []
        for name in ("cold", "warm"):
            t = time.perf_counter()
            bridge.write_dataset(
                out / f"ray{workers}-{name}",
                jax.random.key(1),
                scm,
                rows,
                shards=shards,
                chunk=chunk,
                ray=True,
            )
            walls.append(time.perf_counter() - t)
        rss = _worker_rss(ray, workers)
    finally:
        ray.shutdown()
    return {"workers": workers, "walls": walls, "peak_rss": rss}


def _equal(out: Path, workers: tuple[int, ...]) -> bool:
    import pyarrow.parquet as pq

    want = pq.read_table(out / "cold.parquet")
    folders = [f"ray{w}-{run}" for w in workers for run in ("cold", "warm")]
    folders += ["serial-cold", "serial-warm"]
    return all(pq.read_table(out / name).equals(want) for name in folders)


def markdown(res: dict[str, Any]) -> str:
    """The results table."""
    rows, lines = res["rows"], []
    lines.append(
        f"# Scale-out: {rows:.0e} rows x 30 columns, {res['shards']} shards of "
        f"{res['chunk']}-row blocks\n"
    )
    lines.append(
        f"{res['env']['date_utc']} UTC, {res['env']['cpu_count']} CPU cores shared "
        f"with other jobs, load average {res['load_start'][0]:.1f} at the start and "
        f"{res['load_end'][0]:.1f} at the end; ray {res['env']['ray']}, jax "
        f"{res['env']['jax']}. Output equal to the single file: "
        f"{res['equal']}.\n"
    )
    lines.append(
        "| writer | workers | cold s | warm s | warm rows/s | rows/s per worker "
        "| peak RSS per worker (GiB) |"
    )
    lines.append("|---|---|---|---|---|---|---|")
    for r in res["runs"]:
        cold, warm = r["walls"]
        rss = ", ".join(f"{b / 2**30:.2f}" for b in r["peak_rss"])
        lines.append(
            f"| {r['name']} | {r['workers']} | {cold:.1f} | {warm:.1f} | "
            f"{rows / warm:,.0f} | {rows / warm / r['workers']:,.0f} | {rss} |"
        )
    lines.append(
        "\ncold: fresh process / Ray workers (start-up, imports, compile); warm: the "
        "same again into a new folder. Shards share nothing but the filesystem, so M "
        "machines with c free cores each should write about M x c x (warm rows/s "
        "per worker on a machine that is not oversubscribed), until the shared "
        "filesystem's write bandwidth is the limit; on this 2-core box shared with "
        "other jobs a second worker competes for the same cores."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Runs the three writers and writes the report."""
    __import__("jaxscm").enable_compilation_cache()  # README: CAUSALMIXFT_JAX_CACHE
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--shards", type=int, default=8)
    p.add_argument("--chunk", type=int, default=100_000)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    import importlib.metadata as md

    import jax

    load_start = os.getloadavg()
    print(f"load average {load_start}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="scale_out-"))
    try:
        runs = [
            {"name": "single file", **_single(args.rows, args.chunk, tmp, "file")},
            {
                "name": "dataset, 1 process",
                **_single(args.rows, args.chunk, tmp, str(args.shards)),
            },
        ]
        print(f"  single: {runs[-2:]}", flush=True)
        for w in (1, 2):
            runs.append(
                {"name": f"ray-{w}", **_ray(w, args.rows, args.shards, args.chunk, tmp)}
            )
            print(f"  ray-{w}: {runs[-1]}", flush=True)
        equal = _equal(tmp, (1, 2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res = {
        "rows": args.rows,
        "columns": 30,
        "shards": args.shards,
        "chunk": args.chunk,
        "equal": equal,
        "runs": runs,
        "load_start": load_start,
        "load_end": os.getloadavg(),
        "env": {
            "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            "cpu_count": os.cpu_count(),
            "jax": jax.__version__,
            "ray": md.version("ray"),
            "python": sys.version.split()[0],
        },
    }
    print(f"load average at the end {res['load_end']}; equal: {equal}")
    import jaxscm

    args.out.mkdir(parents=True, exist_ok=True)
    text = markdown(res)
    with jaxscm.atomic_write(args.out / "scale_out.json", "w") as f:
        f.write(json.dumps(res, indent=1))
    with jaxscm.atomic_write(args.out / "scale_out.md", "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
