"""The study's report: markdown tables and PNG plots built from the records alone.

`build_report(profile, out)` reads ``out/records.jsonl`` (validated) and writes
``out/report.md`` with, per method: test ROC-AUC, raw and normalised improvement
over zero-shot (median [IQR]), average rank, the validation-test correlation gap,
minority-class and macro-F1 (threshold chosen on validation), steps and seconds to
the best validation score; and the plots (matplotlib, when installed):
``normalised.png`` (box plot), ``rank.png``, ``gap.png``, ``f1.png`` (median bars
with IQR whiskers) and ``convergence.png`` (median validation ROC-AUC gain over the
pre-trained model per step, IQR band; a run that stopped early carries its last
value forward). Definitions: `benchmarks.study.metrics`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.study import metrics
from benchmarks.study._profiles import ZERO_SHOT, Profile
from benchmarks.study._records import read_records


def _fmt(m: tuple[float, float, float], digits: int = 3) -> str:
    if not math.isfinite(m[0]):
        return "-"
    return f"{m[0]:+.{digits}f} [{m[1]:+.{digits}f}, {m[2]:+.{digits}f}]"


def _plain_fmt(m: tuple[float, float, float], digits: int = 3) -> str:
    if not math.isfinite(m[0]):
        return "-"
    return f"{m[0]:.{digits}f} [{m[1]:.{digits}f}, {m[2]:.{digits}f}]"


def summarise(profile: Profile, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per-method aggregates of the ok records (see the module docstring)."""
    ok = [r for r in records if r["status"] == "ok"]
    rows = [{**r["cell"], **r["metrics"]} for r in ok]
    groups = metrics.group_table(rows, ZERO_SHOT)
    out: dict[str, Any] = {}
    for m in profile.methods:
        runs = [r for r in ok if r["cell"]["method"] == m.name]
        g = groups.get(m.name, {"improvement": [], "normalised": [], "rank": []})
        gaps = [r["metrics"]["gap"] for r in runs]

        def col(name: str, runs: list[dict[str, Any]] = runs) -> list[float]:
            return [r["metrics"][name] for r in runs if r["metrics"][name] is not None]

        out[m.name] = {
            "runs": len(runs),
            "errors": sum(
                1
                for r in records
                if r["cell"]["method"] == m.name and r["status"] == "error"
            ),
            "test_roc_auc": metrics.median_iqr(col("test_roc_auc")),
            "improvement": metrics.median_iqr(g["improvement"]),
            "normalised": metrics.median_iqr(g["normalised"]),
            "normalised_values": g["normalised"],
            "rank": float(np.mean(g["rank"])) if g["rank"] else math.nan,
            "gap": metrics.median_iqr(x for x in gaps if x is not None),
            "gap_values": [x for x in gaps if x is not None],
            "gap_undefined": sum(1 for x in gaps if x is None),
            "minority_f1": metrics.median_iqr(col("minority_f1")),
            "macro_f1": metrics.median_iqr(col("macro_f1")),
            "best_step": metrics.median_iqr(col("best_step")),
            "seconds_to_best": metrics.median_iqr(
                r["timing"]["seconds_to_best"] for r in runs
            ),
            "wall_s": sum(r["timing"]["wall_s"] for r in runs),
        }
    return out


def _table(summary: dict[str, Any]) -> list[str]:
    head = (
        "| method | runs (errors) | test ROC-AUC | improvement | normalised "
        "improvement | avg rank | val-test gap (undefined) | minority F1 | macro-F1 "
        "| step of best val | s to best val |"
    )
    lines = [head, "|" + "---|" * 11]
    for name, s in summary.items():
        lines.append(
            f"| {name} | {s['runs']} ({s['errors']}) | {_plain_fmt(s['test_roc_auc'])}"
            f" | {_fmt(s['improvement'])} | {_fmt(s['normalised'])} | "
            f"{s['rank']:.2f} | {_plain_fmt(s['gap'], 2)} ({s['gap_undefined']}) | "
            f"{_plain_fmt(s['minority_f1'])} | {_plain_fmt(s['macro_f1'])} | "
            f"{_plain_fmt(s['best_step'], 0)} | {_plain_fmt(s['seconds_to_best'], 1)} |"
        )
    return lines


def _errors(records: Sequence[dict[str, Any]]) -> list[str]:
    bad = [r for r in records if r["status"] == "error"]
    if not bad:
        return []
    lines = ["", "## Cells that failed", ""]
    lines += [f"- `{r['key']}`: {r['error']}" for r in bad[:50]]
    if len(bad) > 50:
        lines.append(f"- ... and {len(bad) - 50} more")
    return lines


def _environment(records: Sequence[dict[str, Any]]) -> list[str]:
    if not records:
        return []
    env = records[-1]["env"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    wall = sum(r["timing"]["wall_s"] for r in records)
    loads = [r["machine"]["loadavg_start"][0] for r in records]
    return [
        "",
        f"Versions: {versions}. TFM checkpoint sha256 `{env['tfm_sha256']}`.",
        f"Cell wall time: {wall / 3600:.2f} core-hours in all; 1-minute load average "
        f"at cell start {min(loads):.1f}-{max(loads):.1f} (shared machine).",
    ]


def build_report(
    profile: Profile,
    out: str | os.PathLike[str],
    *,
    command: str = "",
) -> Path:
    """Writes ``report.md`` (and the PNGs) of the records in `out`.

    Args:
      profile: the grid the records belong to.
      out: the output folder holding ``records.jsonl``.
      command: the command line that made the records (printed in the report).

    Returns:
      The path of ``report.md``.

    Raises:
      RecordError: the records file is damaged or from other settings.
    """
    from jaxscm import atomic_write

    out = Path(out)
    records = read_records(out / "records.jsonl", profile.settings_sha256())
    summary = summarise(profile, records)
    n_cells = len(profile.cells())
    lines = [
        f"# Study `{profile.study}`, profile `{profile.name}`",
        "",
        f"{len(records)} of {n_cells} cells recorded. Datasets: "
        f"{', '.join(profile.datasets)}; sizes {list(profile.sizes)}; seeds "
        f"{list(profile.seeds)}.",
        f"Fine-tuning settings (frozen): `{dict(profile.settings)}`.",
    ]
    if command:
        lines += ["", f"Command: `{command}`"]
    lines += [
        "",
        "Median [25th, 75th percentile] over runs (improvements: over the groups",
        "(dataset, n_train, seed) holding zero-shot). Definitions: the docstring of",
        "`benchmarks/study/metrics.py` and the README's study section.",
        "",
        *_table(summary),
        *_errors(records),
        *_environment(records),
    ]
    pngs = _plots(profile, records, summary, out)
    if pngs:
        lines += ["", *[f"![{p.stem}]({p.name})" for p in pngs]]
    path = out / "report.md"
    with atomic_write(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _curves(records: Sequence[dict[str, Any]], method: str) -> np.ndarray:
    """(runs, evaluations) validation ROC-AUC minus the step-0 value, carried."""
    runs = [
        r["curve"]
        for r in records
        if r["status"] == "ok" and r["cell"]["method"] == method and r["curve"]
    ]
    if not runs:
        return np.zeros((0, 0))
    steps = sorted({c[0] for run in runs for c in run})
    out = np.full((len(runs), len(steps)), np.nan)
    for i, run in enumerate(runs):
        by_step = {c[0]: c[1] for c in run if c[1] is not None}
        base, last = by_step.get(0, np.nan), np.nan
        for j, s in enumerate(steps):
            last = by_step.get(s, last)
            out[i, j] = last - base
    return np.vstack([np.asarray(steps, float), out])


def _plots(
    profile: Profile,
    records: Sequence[dict[str, Any]],
    summary: dict[str, Any],
    out: Path,
) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    names = [m for m in summary if summary[m]["runs"]]
    if not names:
        return []
    paths = []

    def save(fig: Any, name: str) -> None:
        from jaxscm import atomic_write

        fig.tight_layout()
        path = out / name
        with atomic_write(path, "wb") as f:
            fig.savefig(f, format="png", dpi=110)
        plt.close(fig)
        paths.append(path)

    fig, ax = plt.subplots(figsize=(8, 4))
    ax.boxplot([summary[m]["normalised_values"] or [np.nan] for m in names])
    ax.set_xticks(range(1, len(names) + 1), names, rotation=45, ha="right")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylabel("normalised improvement over zero-shot")
    save(fig, "normalised.png")

    fig, ax = plt.subplots(figsize=(8, 4))
    order = sorted(names, key=lambda m: summary[m]["rank"])
    ax.barh(order, [summary[m]["rank"] for m in order])
    ax.invert_yaxis()
    ax.set_xlabel("average rank (1 = best test ROC-AUC)")
    save(fig, "rank.png")

    fig, ax = plt.subplots(figsize=(8, 4))
    ax.boxplot([summary[m]["gap_values"] or [np.nan] for m in names])
    ax.set_xticks(range(1, len(names) + 1), names, rotation=45, ha="right")
    ax.set_ylabel("val-test gap, 1 - Pearson r")
    save(fig, "gap.png")

    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(names))
    for k, (key, label) in enumerate(
        [("minority_f1", "minority F1"), ("macro_f1", "macro-F1")]
    ):
        med = np.array([summary[m][key][0] for m in names])
        lo = med - np.array([summary[m][key][1] for m in names])
        hi = np.array([summary[m][key][2] for m in names]) - med
        ax.bar(x + (k - 0.5) * 0.4, med, 0.4, yerr=[lo, hi], capsize=3, label=label)
    ax.set_xticks(x, names, rotation=45, ha="right")
    ax.set_ylabel("test F1 (threshold chosen on validation)")
    ax.legend()
    save(fig, "f1.png")

    fig, ax = plt.subplots(figsize=(8, 4))
    for m in names:
        c = _curves(records, m)
        if c.shape[1] < 2:
            continue
        steps, vals = c[0], c[1:]
        ax.plot(steps, np.nanmedian(vals, 0), label=m)
        ax.fill_between(
            steps,
            np.nanpercentile(vals, 25, 0),
            np.nanpercentile(vals, 75, 0),
            alpha=0.2,
        )
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("validation ROC-AUC - step 0")
    ax.legend(fontsize=8)
    save(fig, "convergence.png")
    return paths
