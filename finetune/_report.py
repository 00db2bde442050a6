"""Run artefacts and reports of the `causalmixft` commands: history CSVs, the
training-curve figure, the fine-tuning run's markdown report, the demo's results
table and the `fit-scm` summary. All writes are atomic (`jaxscm.atomic_write`)."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jaxscm import atomic_write


def write_text(path: Path, text: str) -> None:
    """Atomic text write."""
    with atomic_write(path, "w") as f:
        f.write(text)


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Writes dict rows as CSV (columns: the union of keys, in first-seen order)."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols)
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
    write_text(path, buf.getvalue())


def plot_curves(
    path: Path,
    runs: Mapping[str, Any],
    *,
    metric: str = "roc_auc",
    baseline: Mapping[str, float] | None = None,
    title: str = "",
) -> None:
    """Training-curve figure: train loss per step (left), validation/test metric per
    evaluation (right), one line style per run.

    Args:
      path: the PNG to write.
      runs: run name -> fitted `CausalMixFTClassifier` (uses `steps_`, `history_`).
      metric: "roc_auc", "log_loss" or "accuracy".
      baseline: horizontal reference lines (label -> value) on the metric panel.
      title: figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_l, ax_m) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (name, est) in enumerate(runs.items()):
        color = f"C{i}"
        steps = [s["step"] for s in est.steps_]
        loss = [s["loss"] for s in est.steps_]
        if steps:
            ax_l.plot(steps, loss, color=color, alpha=0.25, lw=0.8)
            ax_l.plot(steps, _smooth(loss), color=color, lw=1.8, label=name)
        h = est.history_
        for split, style in (("val", "--"), ("test", "-")):
            key = f"{split}_{metric}"
            pts = [(r["step"], r[key]) for r in h if key in r and _finite(r[key])]
            if pts:
                ax_m.plot(
                    *zip(*pts, strict=True),
                    style,
                    color=color,
                    marker="o",
                    ms=3,
                    label=f"{name} ({split})",
                )
        if est.history_:
            ax_m.axvline(est.best_step_, color=color, lw=0.6, ls=":")
    for j, (label, value) in enumerate((baseline or {}).items()):
        ax_m.axhline(value, color=f"C{len(runs) + j}", lw=1.2, ls="-.", label=label)
    ax_l.set(
        xlabel="step",
        ylabel="train loss (query cross-entropy)",
        title="training loss (smoothed)",
    )
    ax_m.set(
        xlabel="step",
        ylabel=metric.replace("_", "-"),
        title=f"{metric.replace('_', '-')} per evaluation (dotted: kept step)",
    )
    for ax in (ax_l, ax_m):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()

    try:
        with atomic_write(path) as f:
            fig.savefig(f, format="png", dpi=110)
    finally:
        plt.close(fig)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table."""
    fmt = [" | ".join(str(h) for h in header), " | ".join("---" for _ in header)]
    fmt += [" | ".join(_cell(v) for v in r) for r in rows]
    return "\n".join(f"| {line} |" for line in fmt)


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return "-" if not math.isfinite(v) else f"{v:.4f}"
    return "-" if v is None else str(v)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _smooth(v: Sequence[float], width: int = 10) -> list[float]:
    out, acc = [], []
    for x in v:
        acc = (acc + [x])[-width:]
        out.append(sum(acc) / len(acc))
    return out


def ensure_new_dir(path: str | os.PathLike[str], what: str) -> Path:
    """Creates `path` if needed; refuses one that already holds a finished `what`."""
    path = Path(path)
    if (path / what).exists():
        raise FileExistsError(
            f"{path} already holds a finished run ({what}); choose another "
            "output folder"
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_report(
    est: Any,
    *,
    title: str,
    command: str,
    n_train: int,
    n_features: int,
    n_test: int,
    target: str,
    wall: float,
) -> str:
    """The markdown report of one fine-tuning run (`finetune_to_folder`).

    Args:
      est: the fitted `CausalMixFTClassifier` (its options, `history_`, `steps_`).
      title: what the run was on (the data file's name).
      command: the command line that ran it.
      n_train: training rows.
      n_features: feature columns of the training table.
      n_test: held-out test rows (0: none).
      target: the label column.
      wall: seconds the whole run took.

    Returns:
      The report; its lines 2-8 are the summary `causalmixft finetune` prints.
    """
    import numpy as np

    metric = est.eval_metric
    rows = [
        [
            h["step"],
            h.get("train_loss"),
            h.get(f"val_{metric}"),
            h.get(f"val_synthetic_{metric}"),
            h.get(f"test_{metric}"),
        ]
        for h in est.history_
    ]
    first, best = (
        (est.history_[0], next(h for h in est.history_ if h["step"] == est.best_step_))
        if est.history_
        else ({}, {})
    )
    lines = [
        f"# CausalMixFT run: {title}",
        "",
        f"- command: `{command}`",
        f"- rows: {n_train} train ({n_features} features), {n_test} test; "
        f"target `{target}`, classes {[str(c) for c in est.classes_]}",
        f"- augment: {est.augment}{_source(est)}{_classes(est)}; ratio {est.ratio}; "
        f"placement {est.placement}; validation {est.validation}; lr {est.lr}",
        f"- stopped: {est.stop_reason_} after {len(est.steps_)} steps; kept the "
        f"weights of step {est.best_step_}"
        + (" (the pre-trained ones: nothing beat them)" if est.best_step_ == 0 else ""),
        f"- time: {wall:.1f} s in all, {_fit_what(est)} fit {_fit_seconds(est):.1f} s, "
        f"fine-tuning {est.fit_seconds_:.1f} s, median step "
        f"{np.median([s['seconds'] for s in est.steps_]) if est.steps_ else 0:.3f} s",
    ]
    if first and best:
        lines.append(
            f"- validation {metric}: {first.get('val_' + metric, float('nan')):.4f}"
            f" before fine-tuning, {best.get('val_' + metric, float('nan')):.4f} "
            "at the kept step"
        )
        if f"test_{metric}" in best:
            lines.append(
                f"- test {metric}: {first['test_' + metric]:.4f} zero-shot, "
                f"{best['test_' + metric]:.4f} fine-tuned"
            )
    lines += [
        "",
        "## Evaluations",
        "",
        markdown_table(
            [
                "step",
                "train loss",
                f"val {metric}",
                f"synthetic val {metric}",
                f"test {metric}",
            ],
            rows,
        ),
        "",
        "![training curve](curve.png)",
        "",
        "Files: `model/` (load with `finetune.CausalMixFTClassifier.load`), "
        "`history.csv`, `steps.csv`, `curve.png`.",
        "",
    ]
    return "\n".join(lines)


def fit_summary(info: Any, target: str, path: str | os.PathLike[str]) -> str:
    """What `causalmixft fit-scm` prints about a fitted ensemble saved at `path`.

    Args:
      info: the `jaxscm.FitInfo` of the fit.
      target: the target column.
      path: the saved model directory.

    Returns:
      Five lines: the table, the graphs, the timings, the folder, the next command.
    """
    import numpy as np

    kinds_count = {
        k: sum(c.kind == k for c in info.columns)
        for k in ("numeric", "integer", "categorical")
    }
    edges = info.dags.sum(axis=(1, 2))
    t = info.timings
    return "\n".join(
        [
            f"fitted {len(info.dags)} SCMs on {info.n_rows} rows x "
            f"{len(info.columns)} columns "
            f"({', '.join(f'{v} {k}' for k, v in kinds_count.items() if v)}; "
            f"target {target!r})",
            f"edges per graph: {int(edges.min())}-{int(edges.max())} "
            f"(mean {float(np.mean(edges)):.1f}); imputed columns: "
            f"{sum(r > 0 for r in info.missing_rate.values())}; "
            f"rows dropped for a missing target: {info.dropped_rows}",
            f"time: discover {t['discover']:.1f} s, DoWhy fit {t['fit']:.1f} s, "
            f"distill {t['distill']:.1f} s, graph sampling + stacking "
            f"{t['sample_dags'] + t['stack']:.1f} s, total {t['total']:.1f} s",
            f"saved {path}",
            f"next: causalmixft sample {path} -n 10000 -o synthetic.csv",
        ]
    )


def demo_report(
    per_seed: Sequence[Mapping[str, Mapping[str, Any]]],
    *,
    dataset: str,
    seeds: Sequence[int],
    n_train: int,
    n_test: int,
    tfm: str,
    total: float,
) -> tuple[str, str]:
    """The demo's results table and its markdown page.

    Args:
      per_seed: per split seed, method -> its results (`compare_on_split`).
      dataset: the dataset's name.
      seeds: the split seeds, in the order of `per_seed`.
      n_train: labelled training rows.
      n_test: held-out test rows.
      tfm: which TFM checkpoint ran.
      total: wall seconds of the whole demo.

    Returns:
      `(table, page)`: the markdown table alone, and the page around it.
    """
    import numpy as np

    methods = list(per_seed[0])
    several = len(seeds) > 1
    header = (
        ["method", "test ROC-AUC"]
        + ([f"seed {s}" for s in seeds] if several else [])
        + ["steps", "kept step", "wall s"]
    )
    rows = []
    for m in methods:
        aucs = [r[m]["test_roc_auc"] for r in per_seed]
        rows.append(
            [m, float(np.mean(aucs))]
            + (aucs if several else [])
            + [
                "/".join(str(r[m]["steps"]) for r in per_seed),
                "/".join(str(r[m]["kept_step"]) for r in per_seed),
                f"{np.mean([r[m]['seconds'] for r in per_seed]):.1f}",
            ]
        )
    table = markdown_table(header, rows)
    page = (
        f"# causalmixft demo: {dataset}, {n_train} training rows\n\n"
        f"Test ROC-AUC on {n_test} held-out rows (mean over split seeds "
        f"{list(seeds)}); TFM: {tfm}.\n\n{table}\n\nTotal wall time {total:.1f} s."
        "\n\n![curves](demo_curves.png)\n"
    )
    return table, page


def _info(est: Any) -> dict[str, Any]:
    return getattr(est, "augment_info_", None) or {}


def _source(est: Any) -> str:
    """How the run's generator fed the loop, e.g. " (pool of 2400 rows drawn once)"."""
    info = _info(est)
    mode = info.get("mode")
    if mode == "pool":
        what = f" (pool of {info.get('pool_rows')} rows drawn once"
    elif mode == "stream":
        what = " (fresh rows every step"
    else:
        return ""
    opts = info.get("options") or {}
    return what + (f"; options {opts})" if opts else ")")


def _classes(est: Any) -> str:
    """The synthetic rows' class request, e.g. "; synthetic classes balanced"."""
    request = _info(est).get("synthetic_classes")
    return "" if request is None else f"; synthetic classes {request}"


def _fit_what(est: Any) -> str:
    gen = _info(est).get("generator")
    if gen is None or gen in ("causalmix", "scm_only"):
        return "SCM ensemble"
    return f"{gen} generator"


def _fit_seconds(est: Any) -> float:
    info = _info(est)
    return float(info.get("fit_seconds", est.scm_seconds_))
