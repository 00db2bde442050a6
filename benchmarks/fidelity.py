"""Fidelity of the SCM's synthetic rows, before and after the marginal-faithful SCM.

For every `paper33` table and training size (128 and 500 rows by default), one
`make_split(name, n, seed=0)`; the training rows (features + target) go to
`jaxscm.fit_scm` (8 graphs, seed 0) twice:

* `before`: `marginals=MarginalOptions.off(), label=LabelOptions.off()` - the SCM as it
  was before issue 12 (bit for bit: the equivalence tests check the off switches);
* `after`: `fit_scm`'s defaults (snapped / point-mass / transformed numeric nodes,
  widened and class-share-calibrated target).

Each model draws as many rows as there are training rows (key 0, pooled over the
members), and `finetune.quality_report(train, synthetic, target=..., holdout=test)`
scores them: tree (HGB) and logistic detection ROC-AUC of real training vs synthetic
rows, TSTR vs TRTR ROC-AUC on the test rows, minority-class share drift, DCR. Nothing
here chooses a default: the knobs were frozen on validation splits of a development
subset (`benchmarks.label_mechanism`) before this ran.

Resumable: each (table, size, variant) is a cell; the synthetic rows go to the work
folder (`--work`, default `~/.cache/causalmixft/fidelity`) and the cell's scores to
`benchmarks/results/fidelity/cells/*.json`; a rerun skips finished cells. The summary
is `benchmarks/results/fidelity.{md,json}`.

    OMP_NUM_THREADS=1 python -m benchmarks.fidelity                  # all cells
    OMP_NUM_THREADS=1 python -m benchmarks.fidelity --stage generate --variants before
    OMP_NUM_THREADS=1 python -m benchmarks.fidelity --stage summary  # tables only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from jaxscm import SchemaError, atomic_write

RESULTS = Path(__file__).parent / "results"
CELLS = RESULTS / "fidelity" / "cells"
SIZES = (128, 500)
VARIANTS = ("before", "after")
HEADLINE = ("detection_auc_hgb", "detection_auc_lr", "tstr_auc", "trtr_auc")


def variant_options(variant: str) -> dict[str, Any]:
    """`fit_scm` keyword arguments of a variant."""
    import jaxscm

    if variant == "after":
        return {}
    if variant == "before":
        return {
            "marginals": jaxscm.MarginalOptions.off(),
            "label": jaxscm.LabelOptions.off(),
        }
    raise ValueError(f"unknown variant {variant!r}; known: {VARIANTS}")


def _cell_name(table: str, n: int, variant: str) -> str:
    return f"{table}-{n}-{variant}"


def _split_frames(table: str, n: int) -> tuple[Any, Any, str]:
    from benchmarks.datasets import make_split

    s = make_split(table, n, seed=0)
    target = str(s.y_train.name)
    # a column constant on the few training rows carries nothing; fit_scm refuses it
    keep = [c for c in s.X_train.columns if s.X_train[c].nunique(dropna=True) > 1]
    train = s.X_train[keep].assign(**{target: s.y_train})
    test = s.X_test[keep].assign(**{target: s.y_test})
    return train, test, target


def generate(table: str, n: int, variant: str, work: Path, n_dags: int) -> dict:
    """Fits the variant's SCM on the split's training rows and writes its rows."""
    import jax

    import bridge
    import jaxscm

    out = work / f"{_cell_name(table, n, variant)}.parquet"
    meta_path = out.with_suffix(".json")
    if out.exists() and meta_path.exists():
        return json.loads(meta_path.read_text())
    train, _, target = _split_frames(table, n)
    t0 = time.perf_counter()
    model = jaxscm.fit_scm(
        train,
        target,
        n_dags=n_dags,
        seed=0,
        progress=False,
        **variant_options(variant),
    )
    fit_s = time.perf_counter() - t0
    rows = len(train)
    k = model.adjacency.shape[0]
    x = np.asarray(jaxscm.sample(jax.random.key(0), model, -(-rows // k)))
    pooled = x.reshape(-1, x.shape[-1])
    pooled = pooled[np.random.default_rng(0).permutation(len(pooled))[:rows]]
    synthetic = bridge.to_frame(pooled, model.columns)[list(train.columns)]
    with atomic_write(out, "wb") as f:  # Parquet keeps the category dtypes
        synthetic.to_parquet(f, index=False)
    meta = {
        "table": table,
        "n_train": n,
        "variant": variant,
        "n_dags": n_dags,
        "fit_seconds": round(fit_s, 2),
        "timings": {k: round(v, 2) for k, v in model.info.timings.items()},
        "target_parents": _target_parents(model),
    }
    with atomic_write(meta_path, "w") as f:
        json.dump(meta, f, indent=1)
    return meta


def _target_parents(model: Any) -> list[int]:
    """Per graph, how many parents the target has."""
    info = model.info
    t = next(i for i, c in enumerate(info.columns) if c.is_target)
    return [int(d[:, t].sum()) for d in np.asarray(info.dags)]


def score(table: str, n: int, variant: str, work: Path) -> dict:
    """The quality report's headline numbers of one generated cell."""
    import pandas as pd

    from finetune.quality import quality_report

    path = CELLS / f"{_cell_name(table, n, variant)}.json"
    if path.exists():
        return json.loads(path.read_text())
    meta = json.loads((work / f"{_cell_name(table, n, variant)}.json").read_text())
    train, test, target = _split_frames(table, n)
    synthetic = pd.read_parquet(work / f"{_cell_name(table, n, variant)}.parquet")
    t0 = time.perf_counter()
    report = quality_report(train, synthetic, target=target, holdout=test, seed=0)
    record = {
        **meta,
        "score_seconds": round(time.perf_counter() - t0, 2),
        "headline": report.headline(),
        "class_share_real": report.class_share_real,
        "class_share_synthetic": report.class_share_synthetic,
    }
    CELLS.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as f:
        json.dump(record, f, indent=1, default=_plain)
    return record


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def summarise(tables: list[str], sizes: tuple[int, ...]) -> dict:
    """Median and worst five tables per size and variant, from the cell records of
    the tables scored in both variants."""
    out: dict[str, Any] = {}
    for n in sizes:
        # paired: only tables scored in every variant, so the medians compare alike
        both = [
            t
            for t in tables
            if all((CELLS / f"{_cell_name(t, n, v)}.json").exists() for v in VARIANTS)
        ]
        per_variant: dict[str, Any] = {}
        for variant in VARIANTS if both else ():
            cells = {
                t: json.loads((CELLS / f"{_cell_name(t, n, variant)}.json").read_text())
                for t in both
            }
            per_variant[variant] = _aggregate(cells)
        out[str(n)] = per_variant
    return out


def _gap(headline: dict) -> float | None:
    """TSTR - TRTR ROC-AUC of a cell, None without utility numbers."""
    if headline["tstr_auc"] is None or headline["trtr_auc"] is None:
        return None
    return headline["tstr_auc"] - headline["trtr_auc"]


def _aggregate(cells: dict[str, dict]) -> dict:
    def series(f):
        vals = {t: f(c["headline"]) for t, c in cells.items()}
        return {t: v for t, v in vals.items() if v is not None}

    det = series(lambda h: h["detection_auc_hgb"])
    det_lr = series(lambda h: h["detection_auc_lr"])
    gap = series(_gap)
    drift = series(lambda h: h["minority_share_drift"])

    def stat(vals: dict[str, float], worst_high: bool) -> dict:
        if not vals:
            return {"median": None, "worst5": []}
        order = sorted(vals, key=lambda t: vals[t], reverse=worst_high)
        return {
            "median": float(np.median(list(vals.values()))),
            "worst5": [[t, round(vals[t], 4)] for t in order[:5]],
        }

    return {
        "tables": len(cells),
        "detection_auc_hgb": stat(det, True),
        "detection_auc_lr": stat(det_lr, True),
        "tstr_minus_trtr": stat(gap, False),
        "minority_share_drift": stat(drift, True),
        "fit_seconds_median": float(
            np.median([c["fit_seconds"] for c in cells.values()])
        ),
    }


def _markdown(summary: dict, env: dict) -> str:
    lines = [
        "# Fidelity of the SCM's synthetic rows: before vs after issue 12",
        "",
        "Generated by `OMP_NUM_THREADS=1 python -m benchmarks.fidelity` "
        f"({env['when']}, {env['machine']}, load average {env['load']}).",
        "`paper33`, `make_split(name, n, seed=0)`, `fit_scm(n_dags=8, seed=0)`, as "
        "many "
        "synthetic rows as training rows (key 0); detection = real training vs "
        "synthetic rows, 3-fold stratified, equal counts (0.5: indistinguishable); "
        "TSTR / TRTR = HGB trained on synthetic / real training rows, ROC-AUC on the "
        "test rows; drift = |share_syn - share_real| / share_real of the real "
        "minority class. Definitions: `finetune/quality.py`.",
        "",
        "| rows | metric | before: median | after: median | target |",
        "|---:|---|---:|---:|---|",
    ]
    targets = {
        "detection_auc_hgb": "<= 0.60 at 500 rows (at least < 0.70)",
        "detection_auc_lr": "",
        "tstr_minus_trtr": ">= -0.02",
        "minority_share_drift": "<= 0.10",
    }
    for n, per in summary.items():
        for metric, target in targets.items():
            cells = [per.get(v, {}).get(metric, {}).get("median") for v in VARIANTS]
            vals = ["-" if c is None else f"{c:.3f}" for c in cells]
            lines.append(f"| {n} | {metric} | {vals[0]} | {vals[1]} | {target} |")
    lines += ["", "## Worst five tables", ""]
    for n, per in summary.items():
        for variant, agg in per.items():
            lines.append(
                f"**{n} rows, {variant}** ({agg['tables']} tables, median fit "
                f"{agg['fit_seconds_median']:.1f} s)"
            )
            lines.append("")
            for metric in targets:
                worst = ", ".join(f"{t} {v:.3f}" for t, v in agg[metric]["worst5"])
                lines.append(f"- {metric}: {worst}")
            lines.append("")
    return "\n".join(lines) + "\n"


def _per_table(tables: list[str], sizes: tuple[int, ...]) -> str:
    """One row per table and size: before -> after of the headline numbers."""
    lines = [
        "## Per table",
        "",
        "| table | rows | detection HGB | TSTR - TRTR | minority drift | "
        "column shapes | fit s |",
        "|---|---:|---|---|---|---|---|",
    ]

    def pair(values: list[Any]) -> str:
        return " -> ".join("-" if v is None else f"{v:.3f}" for v in values)

    for n in sizes:
        for t in tables:
            recs = [CELLS / f"{_cell_name(t, n, v)}.json" for v in VARIANTS]
            if not all(p.exists() for p in recs):
                continue
            hs = [json.loads(p.read_text()) for p in recs]
            h = [r["headline"] for r in hs]
            gap = [_gap(x) for x in h]
            lines.append(
                f"| {t} | {n} | {pair([x['detection_auc_hgb'] for x in h])} | "
                f"{pair(gap)} | {pair([x['minority_share_drift'] for x in h])} | "
                f"{pair([x['column_shapes'] for x in h])} | "
                f"{' -> '.join(str(round(r['fit_seconds'])) for r in hs)} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Runs the missing cells and writes the summary."""
    __import__("jaxscm").enable_compilation_cache()  # README: CAUSALMIXFT_JAX_CACHE
    from benchmarks.datasets import list_datasets

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", nargs="*", default=None)
    parser.add_argument("--sizes", nargs="*", type=int, default=list(SIZES))
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--n-dags", type=int, default=8)
    parser.add_argument(
        "--stage", choices=("generate", "score", "summary", "all"), default="all"
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        / "causalmixft"
        / "fidelity",
    )
    args = parser.parse_args(argv)
    tables = args.tables or list_datasets("paper33")
    args.work.mkdir(parents=True, exist_ok=True)
    if args.stage in ("generate", "score", "all"):
        for n in args.sizes:
            for table in tables:
                for variant in args.variants:
                    _run_cell(table, n, variant, args)
    summary = summarise(tables, tuple(args.sizes))
    env = {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load": " ".join(f"{v:.1f}" for v in os.getloadavg()),
    }
    with atomic_write(RESULTS / "fidelity.json", "w") as f:
        json.dump({"env": env, "summary": summary}, f, indent=1)
    text = _markdown(summary, env) + "\n" + _per_table(tables, tuple(args.sizes))
    with atomic_write(RESULTS / "fidelity.md", "w") as f:
        f.write(text)
    print(text)


def _run_cell(table: str, n: int, variant: str, args: argparse.Namespace) -> None:
    name = _cell_name(table, n, variant)
    try:
        _split_frames(table, n)
    except ValueError as e:  # the table is too small for this size
        print(f"{name}: skipped ({e})", flush=True)
        return
    if args.stage in ("generate", "all"):
        try:
            meta = generate(table, n, variant, args.work, args.n_dags)
        except SchemaError as e:  # fit_scm refuses the training rows (e.g. > 50 labels)
            print(f"{name}: skipped, fit_scm refused the table ({e})", flush=True)
            return
        print(f"{name}: fit {meta['fit_seconds']} s", flush=True)
    if not (args.work / f"{name}.parquet").exists():
        print(f"{name}: not generated", flush=True)
        return
    if args.stage in ("score", "all"):
        rec = score(table, n, variant, args.work)
        print(f"{name}: {rec['headline']}", flush=True)


if __name__ == "__main__":
    main()
