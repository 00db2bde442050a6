"""Parts of the throughput benchmark around the timings: machine description, the
write_parquet peak-RSS run in a fresh process, and the markdown ratio tables."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PARQUET_CHILD = r"""
import json, resource, sys, tempfile, time
from pathlib import Path
import jax
import bridge
from jaxscm import random_scm

def hwm():
    # VmHWM: this process's own peak resident set. (getrusage's ru_maxrss is not
    # usable here: Linux carries the forking parent's high-water mark across exec.)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

rows, chunk = int(sys.argv[1]), int(sys.argv[2])
scm = random_scm(jax.random.key(0), 30, mechanism="linear")
before = hwm()
with tempfile.TemporaryDirectory(dir=sys.argv[3]) as d:
    t = time.perf_counter()
    p = bridge.write_parquet(Path(d) / "x.parquet", jax.random.key(1), scm, rows,
                             chunk=chunk)
    wall = time.perf_counter() - t
    size = p.stat().st_size
print(json.dumps({"rows": rows, "columns": 30, "chunk": chunk, "wall_s": wall,
                  "file_bytes": size, "peak_rss_bytes": hwm(),
                  "rss_after_imports_bytes": before,
                  "ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                  * 1024}))
"""


def parquet_rss(rows: int, chunk: int, tmp_dir: Path) -> dict[str, Any]:
    """write_parquet of rows x 30 in a fresh process; its peak RSS (VmHWM)."""

    proc = subprocess.run(
        [sys.executable, "-c", PARQUET_CHILD, str(rows), str(chunk), str(tmp_dir)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    if proc.returncode:
        return {"rows": rows, "error": proc.stderr[-2000:]}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"  write_parquet {rows:.0e} x 30: {res['wall_s']:.1f}s, peak RSS "
        f"{res['peak_rss_bytes'] / 2**30:.2f} GiB, "
        f"file {res['file_bytes'] / 2**30:.2f} GiB",
        flush=True,
    )
    return res


def environment() -> dict[str, Any]:
    """Versions, device and machine load (other jobs share this machine)."""
    import importlib.metadata as md

    import jax

    versions = {}
    for pkg in (
        "jax",
        "jaxlib",
        "numpy",
        "dowhy",
        "scikit-learn",
        "pandas",
        "pyarrow",
        "torch",
    ):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return {
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "python": platform.python_version(),
        "versions": versions,
        "device": str(jax.devices()[0]),
        "platform": jax.default_backend(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "loadavg_start": os.getloadavg(),
        "threefry_partitionable": bool(jax.config.jax_threefry_partitionable),
        # compile times read from a warm persistent cache are loads, not compiles
        "jax_compilation_cache": jax.config.jax_compilation_cache_dir,
    }


# --- report -------------------------------------------------------------------------


def _rate_at(rates: dict[int, float], n: int) -> tuple[float | None, bool]:
    """rate at n, else at the largest measured n (flagged as capped)."""
    if n in rates:
        return rates[n], False
    if not rates:
        return None, False
    return rates[max(rates)], True


def _fmt(x: float | None, capped: bool = False, digits: int = 2) -> str:
    if x is None or x != x:
        return "n/a"
    return f"{x:.{digits}f}" + ("*" if capped else "")


def markdown(record: dict[str, Any]) -> str:
    """The ratio tables."""
    env = record["environment"]
    lines = [
        "# Sampling throughput",
        "",
        f"{env['date_utc']} UTC, {env['device']} ({env['cpu_count']} cores, "
        f"OMP_NUM_THREADS={env['omp_num_threads']}), jax {env['versions']['jax']}, "
        f"dowhy {env['versions']['dowhy']}, "
        f"scikit-learn {env['versions']['scikit-learn']}. "
        f"Load average at start {tuple(round(v, 1) for v in env['loadavg_start'])}, at "
        f"end {tuple(round(v, 1) for v in record['loadavg_end'])}: other jobs were "
        f"running on this machine, so absolute numbers are pessimistic and noisy.",
        f"Mode: {record['mode']}; wall time {record['wall_s']:.0f}s. Command: "
        f"`{record['command']}`.",
        "",
        f"M rows/s at n = {record['headline_n']:.0e} (or the largest n a method "
        f"reached "
        f"within the {record['config']['budget']}s-per-call budget, marked *). "
        "`x DoWhy` = jaxscm / DoWhy gcm.draw_samples, `x NumPy` = jaxscm / NumPy "
        "topological loop, `/ RNG` = jaxscm / drawing the same (n, d) normals with "
        "threefry (JAX's default PRNG), `/ write` = jaxscm / writing the (n, d) "
        "float32 output. Compile time in seconds, excluded from the rates"
        + _cache_note(env)
        + ".",
        "",
        "| case | jaxscm | ensemble (8) | jaxscm unsafe_rbg | DoWhy | NumPy | x DoWhy "
        "| x NumPy | / RNG | / write | compile s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    hn = record["headline_n"]
    for c in record["cases"]:
        r = c["rates"]
        j, jc = _rate_at(r.get("jaxscm", {}), hn)
        e, ec = _rate_at(r.get("ensemble", {}), hn)
        u, uc = _rate_at(r.get("jaxscm[unsafe_rbg]", {}), hn)
        dw, dc = _rate_at(r.get("DoWhy", {}), hn)
        npy, nc = _rate_at(r.get("NumPy", {}), hn)
        roof = record["rooflines"][str(c["nodes"])]
        rng, rc = _rate_at(roof["rng:threefry2x32"], hn)
        wr, wc = _rate_at(roof["write"], hn)

        def m(x: float | None) -> float | None:
            return None if x is None else x / 1e6

        def ratio(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else a / b

        lines.append(
            f"| {c['name']} | {_fmt(m(j), jc, 3)} | {_fmt(m(e), ec, 3)} | "
            f"{_fmt(m(u), uc, 3)} | {_fmt(m(dw), dc, 4)} | {_fmt(m(npy), nc, 3)} | "
            f"{_fmt(ratio(j, dw), jc or dc, 1)} | {_fmt(ratio(j, npy), jc or nc, 1)} | "
            f"{_fmt(ratio(j, rng), jc or rc)} | {_fmt(ratio(j, wr), jc or wc, 3)} | "
            f"{_fmt(c['compile_s'].get('jaxscm'), False, 1)} |"
        )
    lines += [
        "",
        "Rooflines (M rows/s of (n, d) float32 at the headline n):",
        "",
        "| d | write | threefry | rbg | unsafe_rbg |",
        "|---|---|---|---|---|",
    ]
    for d, roof in record["rooflines"].items():
        vals = [
            _rate_at(roof[k], hn)
            for k in ("write", "rng:threefry2x32", "rng:rbg", "rng:unsafe_rbg")
        ]
        lines.append(
            f"| {d} | "
            + " | ".join(_fmt(None if v is None else v / 1e6, cp) for v, cp in vals)
            + " |"
        )
    lines += [
        "",
        "Small batches, as one CausalMixFT fine-tuning step draws them "
        "(8 different DAGs x 512 rows per call):",
        "",
        "| case | jaxscm calls/s | via bridge.stream -> torch | DoWhy (8 models) "
        "calls/s | x DoWhy |",
        "|---|---|---|---|---|",
    ]
    for s in record["small_batch"]:
        lines.append(
            f"| {s['case']} | {s['jaxscm_calls_per_s']:.0f} | "
            f"{s['jaxscm_stream_torch_calls_per_s']:.0f} | "
            f"{s['dowhy_calls_per_s']:.2f} | {s['ratio']:.0f} |"
        )
    lat = record.get("latency")
    if lat:
        from benchmarks._throughput_latency import markdown as latency_markdown

        again = record.get("latency_run")
        if again:
            e = again["environment"]
            lines += [
                "",
                f"Small-batch and latency rows measured again on {e['date_utc']} UTC "
                f"(`{again['command']}`, {again['wall_s']:.0f} s), load average "
                f"{tuple(round(x, 2) for x in e['loadavg_start'])} at start, "
                f"{tuple(round(x, 2) for x in again['loadavg_end'])} at the end.",
            ]
        lines += latency_markdown(lat)
    pq = record.get("parquet")
    if pq and "peak_rss_bytes" in pq:
        lines += [
            "",
            f"`bridge.write_parquet` of {pq['rows']:.0e} rows x 30 columns "
            f"(chunk {pq['chunk']:.0e}): {pq['wall_s']:.0f}s, peak RSS "
            f"{pq['peak_rss_bytes'] / 2**30:.2f} GiB (VmHWM of the writing process; "
            f"after imports {pq['rss_after_imports_bytes'] / 2**30:.2f} GiB), file "
            f"{pq['file_bytes'] / 2**30:.1f} GiB."
            + (f" {pq['note']}" if "note" in pq else ""),
        ]
    elif pq:
        lines += [
            "",
            f"`bridge.write_parquet` RSS run failed: {pq.get('error', '')[-300:]}",
        ]
    lines += ["", "Caps (where a method's n grid stopped, and fits):", ""]
    for c in record["cases"]:
        caps = "; ".join(f"{k}: {v}" for k, v in c["skipped"].items()) or "none"
        lines.append(
            f"- {c['name']} (fit {c['fit_s']:.0f}s, {c['n_mechanisms']}): {caps}"
        )
    return "\n".join(lines) + "\n"


def _cache_note(env: dict[str, Any]) -> str:
    folder = env.get("jax_compilation_cache")
    if not folder:
        return " (persistent compilation cache off: every compile is cold)"
    return (
        f" (persistent compilation cache {folder}: a program it already held is "
        f"loaded, not compiled; CAUSALMIXFT_JAX_CACHE=off for cold compiles)"
    )


def _describe(scm: Any) -> str:
    from collections import Counter

    kinds = Counter(type(getattr(m, "f", m)).__name__ for m in scm.mechanisms)
    return ", ".join(f"{v} {k}" for k, v in sorted(kinds.items()))
