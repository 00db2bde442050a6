"""Run artefacts shared by `causalmixft finetune` and `causalmixft demo`: history
CSVs, the training-curve figure and the markdown report. All writes are atomic."""

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
