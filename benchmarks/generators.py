"""Every registered generator side by side: fit time, sampling speed and quality.

For each table (default: credit-g, diabetes, australian from `paper33`) at
`--n-train` training rows (`make_split(name, n, 0)`) and each generator in
`finetune.augmenters.names()` (or `--generators`), with the options in `OPTIONS`
(the generator's CPU-sized defaults otherwise):

* fit seconds: `make(name, **options).fit(X_train, y_train, seed=0)`;
* sampling rows/s (warm): one draw of n rows (seed 1) compiles / warms up, then
  draws of n rows with seeds 2, 3, ... are timed until 1 s or 20 draws have passed;
  `cold_sample_s` is the first draw; `rows_per_s_big` times one draw of `BIG`
  (8192) rows after a warm-up draw of that size (skipped, "-", when the warm rate
  says it would take over `BIG_BUDGET_S`). Streaming generators (fresh rows every
  fine-tuning step) need this fast; pool generators draw once;
* the quality report headline (`finetune.quality.quality_report`): the n synthetic
  rows of seed 1 against the training rows, the split's test rows as the holdout:
  detection_auc_hgb (0.5: indistinguishable), tstr_auc vs trtr_auc (an HGB trained
  on synthetic / real rows, scored on the test rows), minority_share_drift and
  dcr_median (with the holdout's dcr for reference).

The test split is only scored on, never used to choose anything. A generator that
refuses the table (or fails) is recorded with its error. Resumable: one JSON per
(table, generator, n) under `benchmarks/results/generators/`; the summary
`benchmarks/results/generators.{md,json}` is rewritten from all of them, with the
load average (the machine is shared: timings are wall clock under that load).

    OMP_NUM_THREADS=1 python -m benchmarks.generators [--tables credit-g diabetes]
        [--n-train 128] [--generators smote causalmix]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from jaxscm import atomic_write

RESULTS = Path(__file__).parent / "results"
PARTS = RESULTS / "generators"
TABLES = ("credit-g", "diabetes", "australian")
# Options per generator (the registry's defaults otherwise): the SCM with
# `fit_scm`'s defaults except one worker process (the shared 2-core machine).
OPTIONS: dict[str, dict[str, Any]] = {
    "causalmix": {"n_jobs": 1},
    "scm_only": {"n_jobs": 1},
}
BIG = 8192  # rows of the large timed draw
# A generator whose warm rate says a BIG draw takes longer than this is timed at n rows
# only (tabebm: ~10 s per 128 rows, a network pass per SGLD step).
BIG_BUDGET_S = 60.0
HEADLINE = (
    "detection_auc_hgb",
    "tstr_auc",
    "trtr_auc",
    "minority_share_drift",
    "dcr_median",
    "dcr_holdout_median",
)


def _frame(X: Any, y: Any, target: str, gen: Any) -> Any:
    """X with y as column `target`, labels as the generator schema's strings."""
    codes = gen.columns_[-1].code_of(np.asarray(y, dtype=object)).astype(np.int64)
    labels = np.asarray(gen.classes_, dtype=object)[codes]
    return X.assign(**{target: labels}).reset_index(drop=True)


def run_one(table: str, name: str, n: int) -> dict[str, Any]:
    """Fits, times and scores one generator on one table (module docstring)."""
    from benchmarks.datasets import make_split
    from finetune.augmenters import make
    from finetune.quality import quality_report

    split = make_split(table, n, 0)
    target = split.meta.target
    rec: dict[str, Any] = {"table": table, "generator": name, "n_train": n}
    try:
        t = time.perf_counter()
        gen = make(name, **OPTIONS.get(name, {})).fit(
            split.X_train, split.y_train, seed=0
        )
        rec["fit_s"] = time.perf_counter() - t
        t = time.perf_counter()
        Xs, ys = gen.sample(n, seed=1)
        rec["cold_sample_s"] = time.perf_counter() - t
        draws, t = 0, time.perf_counter()
        while draws < 20 and (draws == 0 or time.perf_counter() - t < 1.0):
            gen.sample(n, seed=2 + draws)
            draws += 1
        rec["rows_per_s"] = draws * n / (time.perf_counter() - t)
        rec["rows_per_s_big"] = None
        if BIG / rec["rows_per_s"] <= BIG_BUDGET_S:
            gen.sample(BIG, seed=1)  # warm up (compiles for the size)
            t = time.perf_counter()
            gen.sample(BIG, seed=2)
            rec["rows_per_s_big"] = BIG / (time.perf_counter() - t)
    except Exception as e:  # noqa: BLE001 - a refusal is a result
        rec["error"] = f"{type(e).__name__}: {e}"
        return rec
    rec["streaming"] = bool(gen.streaming)
    rec["conditional"] = gen.conditional
    real = _frame(split.X_train, split.y_train, target, gen)
    synthetic = _frame(Xs, ys, target, gen)
    holdout = _frame(split.X_test, split.y_test, target, gen)
    for col in real.columns:  # categories back to plain labels, as in a CSV
        if synthetic[col].dtype.name == "category":
            synthetic[col] = synthetic[col].astype(object)
    rep = quality_report(real, synthetic, target=target, holdout=holdout, seed=0)
    for key in HEADLINE:
        v = getattr(rep, key)
        rec[key] = None if v is None else float(v)
    rec["minority_class"] = rep.minority_class
    return rec


def _fmt(v: Any, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def report(records: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The markdown summary of all records."""
    lines = [
        "# Generators side by side (`python -m benchmarks.generators`)",
        "",
        f"{meta['n_train']} training rows (`make_split(table, n, 0)`); quality of "
        "n synthetic rows against the training rows, the test split as holdout "
        "(module docstring of `benchmarks/generators.py`). Wall clock on a shared "
        f"machine: load average {meta['loadavg_start']} at the start, "
        f"{meta['loadavg_end']} at the end; {meta['platform']}.",
        "",
    ]
    for table in dict.fromkeys(r["table"] for r in records):
        rows = [r for r in records if r["table"] == table]
        scm = [r for r in rows if r["generator"] == "causalmix" and "rows_per_s" in r]
        lines += [
            f"## {table}",
            "",
            "| generator | stream | fit s | rows/s (warm, n) | rows/s (8192) | "
            "8192 rows/s / causalmix's | "
            "detection AUC (HGB) | TSTR AUC | TRTR AUC | minority share drift | "
            "DCR median (holdout) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            if "error" in r:
                lines.append(f"| {r['generator']} | failed: {r['error'][:120]} |")
                continue
            big = r["rows_per_s_big"]
            ratio = big / scm[0]["rows_per_s_big"] if scm and big else None
            lines.append(
                f"| {r['generator']} | {'yes' if r['streaming'] else 'pool'} | "
                f"{r['fit_s']:.2f} | {r['rows_per_s']:,.0f} | "
                f"{_fmt(big, ',.0f')} | {_fmt(ratio, '.3g')} | "
                f"{_fmt(r['detection_auc_hgb'])} | {_fmt(r['tstr_auc'])} | "
                f"{_fmt(r['trtr_auc'])} | {_fmt(r['minority_share_drift'], '.2f')} | "
                f"{_fmt(r['dcr_median'])} ({_fmt(r['dcr_holdout_median'])}) |"
            )
        lines.append("")
    return "\n".join(lines)


def _platform() -> str:
    """Device, CPUs and the versions the timings depend on."""
    from importlib.metadata import PackageNotFoundError, version

    import jax

    def v(pkg: str) -> str:
        try:
            return version(pkg)
        except PackageNotFoundError:
            return "absent"

    return (
        f"{jax.devices()[0].device_kind} ({jax.default_backend()}), "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, numpy {np.__version__}, jax {jax.__version__}, "
        f"torch {v('torch')}, scikit-learn {v('scikit-learn')}"
    )


def main(argv: list[str] | None = None) -> None:
    """Runs the benchmark, resuming from the per-(table, generator) files."""
    __import__("jaxscm").enable_compilation_cache()  # README: CAUSALMIXFT_JAX_CACHE
    from finetune.augmenters import names

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tables", nargs="+", default=list(TABLES))
    p.add_argument("--n-train", type=int, default=128)
    p.add_argument("--generators", nargs="+", default=None)
    args = p.parse_args(argv)
    gens = args.generators or list(names())
    unknown = sorted(set(gens) - set(names()))
    if unknown:
        p.error(f"unknown generators {unknown}; known: {', '.join(names())}")
    warnings.filterwarnings("ignore")
    PARTS.mkdir(parents=True, exist_ok=True)
    load_start = [round(x, 2) for x in os.getloadavg()]
    for table in args.tables:
        for name in gens:
            path = PARTS / f"{table}__{name}__n{args.n_train}.json"
            if path.exists():
                continue
            rec = run_one(table, name, args.n_train)
            rec["loadavg"] = [round(x, 2) for x in os.getloadavg()]
            with atomic_write(path, "w") as f:
                json.dump(rec, f, indent=1)
            print(json.dumps(rec), flush=True)
    records = [
        json.loads(f.read_text())
        for f in sorted(PARTS.glob(f"*__n{args.n_train}.json"))
    ]
    order = {n: i for i, n in enumerate(names())}
    tables = {t: i for i, t in enumerate(dict.fromkeys(r["table"] for r in records))}
    records.sort(key=lambda r: (tables[r["table"]], order.get(r["generator"], 99)))
    meta = {
        "n_train": args.n_train,
        "loadavg_start": load_start,
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "platform": _platform(),
    }
    with atomic_write(RESULTS / "generators.json", "w") as f:
        json.dump({**meta, "records": records}, f, indent=1)
    with atomic_write(RESULTS / "generators.md", "w") as f:
        f.write(report(records, meta))


if __name__ == "__main__":
    main()
