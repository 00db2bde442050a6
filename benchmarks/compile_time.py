"""Compile time and plain calls of a fitted ensemble: op by op, compiled, cached.

    OMP_NUM_THREADS=1 python -m benchmarks.compile_time [--rows 512] [--calls 20]

Fits `jaxscm.fit_scm` (8 DAGs, its defaults) on credit-g's 128 training rows (the
demo's split, seed 0), saves it, and times `jaxscm.sample(key, model, rows)` side by
side in one run:

1. In this process, with the persistent compilation cache off:
   * before (op by op): the un-jitted body of `jaxscm.sample`, which is what a plain
     call ran before the entry points compiled themselves: the first call and a
     second one with another key;
   * after (plain): the first call (trace + compile + run), a second call with another
     key, and a reloaded model of the same structure (checked not to compile again);
     steady = best of `--calls`;
   * jitted by the user: `jax.jit(jaxscm.sample, static_argnums=2)`, first and steady
     (inside it the entry point's own jit is traced inline).
2. In fresh processes (imports and loading not timed): the first plain call with the
   cache off, with an empty cache folder (cold, the entry is written) and with that
   folder again (cached), each split into tracing, lowering and XLA compile (or cache
   load) from JAX's own `jax.monitoring` events.

Writes ``compile_time.json`` and ``compile_time.md`` to ``--out`` and prints the
table with the device, versions and the load average (other jobs share the machine).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
# JAX's event names (jax._src.dispatch), read through the public jax.monitoring hooks
_TRACE = "/jax/core/compile/jaxpr_trace_duration"
_LOWER = "/jax/core/compile/jaxpr_to_mlir_module_duration"
_COMPILE = "/jax/core/compile/backend_compile_duration"  # includes a cache load
_HIT = "/jax/compilation_cache/cache_hits"


class _Events:
    """Sums of JAX's compile-stage durations and counts of its events."""

    def __init__(self) -> None:
        import jax

        self.seconds: dict[str, float] = defaultdict(float)
        self.count: dict[str, int] = defaultdict(int)
        jax.monitoring.register_event_duration_secs_listener(self._duration)
        jax.monitoring.register_event_listener(self._event)

    def _duration(self, event: str, duration: float, **_: Any) -> None:
        self.seconds[event] += duration
        self.count[event] += 1

    def _event(self, event: str, **_: Any) -> None:
        self.count[event] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "trace_s": self.seconds[_TRACE],
            "lower_s": self.seconds[_LOWER],
            "compile_s": self.seconds[_COMPILE],
            "compiles": self.count[_COMPILE],
            "cache_hits": self.count[_HIT],
        }


def _timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn().block_until_ready()
    return time.perf_counter() - t


def _fit(out: Path, seed: int) -> float:
    import jaxscm
    from benchmarks.datasets import make_split

    s = make_split("credit-g", 128, seed=seed)
    train = s.X_train.assign(**{s.y_train.name: s.y_train})
    t = time.perf_counter()
    model = jaxscm.fit_scm(train, s.y_train.name, n_dags=8, seed=seed, progress=False)
    fit_s = time.perf_counter() - t
    jaxscm.save_fit(out, model)
    return fit_s


def in_process(model_dir: Path, rows: int, calls: int) -> dict[str, Any]:
    """Part 1 of the module docstring: before / plain / user-jitted in one process."""
    import jax

    import jaxscm

    events = _Events()
    model = jaxscm.load_fit(model_dir)
    k0, k1 = jax.random.key(0), jax.random.key(1)
    res: dict[str, Any] = {}
    # Before: the body of `jaxscm.sample` without its jit, which is what a plain call
    # ran before the entry points compiled themselves (jax.random's own jits stay on;
    # `jax.disable_jit()` would also unroll those and measure something slower). The
    # one private name in the benchmarks: there is no public un-jitted sampler.
    from jaxscm._sample import _sample as op_by_op

    res["before_first_s"] = _timed(lambda: op_by_op(k0, model, rows))
    print(f"  before, first call {res['before_first_s']:.1f} s", flush=True)
    res["before_second_s"] = _timed(lambda: op_by_op(k1, model, rows))
    before = op_by_op(k0, model, rows)
    start = events.snapshot()
    res["plain_first_s"] = _timed(lambda: jaxscm.sample(k0, model, rows))
    first = events.snapshot()
    res["plain_first_trace_s"] = first["trace_s"] - start["trace_s"]
    res["plain_first_compile_s"] = first["compile_s"] - start["compile_s"]
    res["plain_second_s"] = _timed(lambda: jaxscm.sample(k1, model, rows))
    again = jaxscm.load_fit(model_dir)  # a new model object, the same structure
    res["plain_reloaded_s"] = _timed(lambda: jaxscm.sample(k1, again, rows))
    res["plain_steady_s"] = min(
        _timed(lambda i=i: jaxscm.sample(jax.random.key(i), model, rows))
        for i in range(calls)
    )
    res["compiles_after_first"] = events.snapshot()["compiles"] - first["compiles"]
    jitted = jax.jit(jaxscm.sample, static_argnums=2)
    res["jit_first_s"] = _timed(lambda: jitted(k0, model, rows))
    res["jit_steady_s"] = min(
        _timed(lambda i=i: jitted(jax.random.key(i), model, rows)) for i in range(calls)
    )
    plain, user = jaxscm.sample(k0, model, rows), jitted(k0, model, rows)
    res["plain_equals_jit"] = bool((plain == user).all())
    # op by op rounds differently in the last bit where XLA fuses (linear nodes)
    res["before_max_abs_diff"] = float(abs(before - plain).max())
    return res


def child(model_dir: Path, rows: int) -> dict[str, Any]:
    """Part 2: the first plain call in this (fresh) process, split by stage."""
    import jax

    import jaxscm

    folder = jaxscm.enable_compilation_cache()  # CAUSALMIXFT_JAX_CACHE set by parent
    model = jaxscm.load_fit(model_dir)
    events = _Events()
    first = _timed(lambda: jaxscm.sample(jax.random.key(0), model, rows))
    second = _timed(lambda: jaxscm.sample(jax.random.key(1), model, rows))
    x = jaxscm.sample(jax.random.key(0), model, rows)
    return {
        "cache": None if folder is None else str(folder),
        "first_call_s": first,
        "second_call_s": second,
        **events.snapshot(),
        "rows_sha": hashlib.sha256(np.asarray(x).tobytes()).hexdigest()[:16],
    }


def _spawn(model_dir: Path, rows: int, cache: str) -> dict[str, Any]:
    env = {**os.environ, "CAUSALMIXFT_JAX_CACHE": cache}
    cmd = [sys.executable, "-m", "benchmarks.compile_time", "--child", str(model_dir)]
    cmd += ["--rows", str(rows)]
    out = subprocess.run(
        cmd, env=env, capture_output=True, text=True, check=True, timeout=1800
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(*, rows: int, calls: int, out: Path, seed: int = 0) -> dict[str, Any]:
    """Runs both parts and writes compile_time.{json,md} under `out`."""
    from benchmarks._throughput_report import environment
    from jaxscm import atomic_write

    env = environment()
    print(
        f"compile-time benchmark: {env['device']}, jax {env['versions']['jax']}, "
        f"load {env['loadavg_start']}",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="causalmixft-compile-"))
    try:
        model_dir = work / "model"
        fit_s = _fit(model_dir, seed)
        print(f"fit_scm credit-g 128 rows, 8 DAGs: {fit_s:.1f} s", flush=True)
        here = in_process(model_dir, rows, calls)
        print(json.dumps(here), flush=True)
        cache = work / "jax-cache"
        procs = {
            "off": _spawn(model_dir, rows, "off"),
            "cold": _spawn(model_dir, rows, str(cache)),
            "cached": _spawn(model_dir, rows, str(cache)),
        }
        procs["cold"]["entries"] = sum(1 for p in cache.rglob("*") if p.is_file())
        print(json.dumps(procs), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record = {
        "command": f"python -m benchmarks.compile_time --rows {rows} --calls {calls}",
        "case": f"credit-g, 128 training rows, fit_scm 8 DAGs; sample 8 x {rows}",
        "environment": env,
        "fit_scm_s": fit_s,
        "in_process": here,
        "processes": procs,
        "loadavg_end": os.getloadavg(),
    }
    md = markdown(record)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "compile_time.json", "w") as f:
        f.write(json.dumps(record, indent=1, default=str))
    with atomic_write(out / "compile_time.md", "w") as f:
        f.write(md)
    print(md, flush=True)
    return record


def markdown(r: dict[str, Any]) -> str:
    """The result tables, with ratios against the baseline measured in the same run."""
    h, p, e = r["in_process"], r["processes"], r["environment"]
    lines = [
        "# Compile time and plain calls (`python -m benchmarks.compile_time`)",
        "",
        f"{r['case']}. {e['date_utc']} UTC, {e['device']}, jax "
        f"{e['versions']['jax']}, {e['cpu_count']} CPUs, OMP_NUM_THREADS="
        f"{e['omp_num_threads']}, load average {_load(e['loadavg_start'])} at start, "
        f"{_load(r['loadavg_end'])} at the end. `fit_scm`: {r['fit_scm_s']:.1f} s.",
        "",
        "## One process (cache off)",
        "",
        "| call | before: op by op | after: plain `jaxscm.sample` | ratio | "
        "`jax.jit` by the user |",
        "|---|---|---|---|---|",
        f"| first | {h['before_first_s']:.2f} s | {h['plain_first_s']:.2f} s "
        f"(trace {h['plain_first_trace_s']:.2f}, compile "
        f"{h['plain_first_compile_s']:.2f}) | "
        f"{h['before_first_s'] / h['plain_first_s']:.1f}x | {h['jit_first_s']:.2f} s |",
        f"| second (another key) | {h['before_second_s']:.2f} s | "
        f"{h['plain_second_s'] * 1e3:.0f} ms | "
        f"{h['before_second_s'] / h['plain_second_s']:.0f}x | |",
        f"| steady (best of calls) | | {h['plain_steady_s'] * 1e3:.0f} ms | | "
        f"{h['jit_steady_s'] * 1e3:.0f} ms (plain / jit "
        f"{h['plain_steady_s'] / h['jit_steady_s']:.2f}) |",
        f"| reloaded model, same structure | | {h['plain_reloaded_s'] * 1e3:.0f} ms |"
        " | |",
        "",
        f"Compilations after the first plain call: {h['compiles_after_first']} (the "
        f"second key, the reloaded model and the steady calls reuse it). Plain = "
        f"jitted bitwise: {h['plain_equals_jit']}; op by op vs compiled: largest "
        f"difference {h['before_max_abs_diff']:.2g}.",
        "",
        "## First call in a fresh process (imports and loading not timed)",
        "",
        "| persistent cache | first call | trace | lower | XLA compile / load | "
        "cache hits | second call |",
        "|---|---|---|---|---|---|---|",
    ]
    names = {
        "off": "off",
        "cold": f"empty folder (cold; entries written: {p['cold'].get('entries')})",
        "cached": "the same folder, next process",
    }
    for k, label in names.items():
        c = p[k]
        lines.append(
            f"| {label} | {c['first_call_s']:.2f} s | {c['trace_s']:.2f} | "
            f"{c['lower_s']:.2f} | {c['compile_s']:.2f} | {c['cache_hits']} | "
            f"{c['second_call_s'] * 1e3:.0f} ms |"
        )
    same = len({c["rows_sha"] for c in p.values()}) == 1
    lines += [
        "",
        f"Cached vs cold: first call {p['cold']['first_call_s']:.2f} -> "
        f"{p['cached']['first_call_s']:.2f} s "
        f"({p['cold']['first_call_s'] / p['cached']['first_call_s']:.1f}x), XLA "
        f"compile {p['cold']['compile_s']:.2f} -> {p['cached']['compile_s']:.2f} s "
        f"({p['cold']['compile_s'] / max(p['cached']['compile_s'], 1e-9):.0f}x); the "
        f"rest is tracing and lowering, which the cache does not save. Same rows in "
        f"all three processes: {same}.",
        "",
    ]
    return "\n".join(lines)


def _load(avg: Any) -> str:
    return "/".join(f"{x:.1f}" for x in avg)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m benchmarks.compile_time`."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=512, help="rows per DAG")
    p.add_argument("--calls", type=int, default=20, help="calls for a steady time")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(args.child, args.rows)), flush=True)
        return 0
    # This benchmark measures compilation itself: its own process keeps the cache
    # off, and its child processes get their folder from CAUSALMIXFT_JAX_CACHE.
    run(rows=args.rows, calls=args.calls, out=args.out, seed=args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
