"""Writes a `QualityReport` as a folder: report.md, report.json and two PNG plots.

The plots use `matplotlib.figure.Figure` without pyplot (no global state, no GUI
backend); the folder appears atomically (`jaxscm.atomic_directory`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from finetune.quality import QualityReport

MAX_PLOTTED = 30  # columns in columns.png
MAX_HEATMAP = 40  # columns in pair_trends.png
_TOP_PAIRS = 10
_TOP_EDGES = 20

_MEANING = {
    "column_shapes": "mean KS/TV complement; 1.0 identical marginals, 0.0 disjoint",
    "column_pair_trends": "mean correlation/contingency similarity; 1.0 identical",
    "detection_auc_lr": "real-vs-synthetic ROC-AUC, logistic regression; "
    "0.5 indistinguishable, 1.0 always told apart",
    "detection_auc_hgb": "real-vs-synthetic ROC-AUC, gradient boosting; "
    "0.5 indistinguishable, 1.0 always told apart",
    "tstr_auc": "holdout ROC-AUC of a model trained on synthetic rows "
    "(0.5: learnt nothing)",
    "trtr_auc": "holdout ROC-AUC of a model trained on real rows (the reference)",
    "tstr_f1": "holdout F1 (minority class / macro), trained on synthetic rows",
    "trtr_f1": "holdout F1 (minority class / macro), trained on real rows",
    "minority_share_drift": "|s_syn - s_real| / s_real of the minority class; 0 exact",
    "dcr_median": "median distance of a synthetic row to its closest real row "
    "(0 copy, 1 nothing in common)",
    "dcr_holdout_median": "the same for real holdout rows: the baseline",
    "exact_copy_share": "share of synthetic rows identical to a real row",
}

_DEFINITIONS = """\
## Definitions

Scores are in [0, 1]. Column kinds were decided once on the real table (text, bools
and integer columns with at most 10 values are categorical). Missing values are
dropped per metric unless stated. Definitions follow SDMetrics.

- **KSComplement** (numeric column) = 1 - max_x |F_real(x) - F_syn(x)|, F the
  empirical CDFs. 1.0: identical distributions; 0.0: disjoint supports.
- **TVComplement** (categorical column) = 1 - 0.5 * sum_c |p_real(c) - p_syn(c)|
  over the union of labels. 1.0: identical shares; 0.0: no label in common.
- **CorrelationSimilarity** (two numeric columns) = 1 - |rho_real - rho_syn| / 2,
  Pearson rho on the rows with both values. 1.0: same correlation; 0.0: opposite
  (+1 vs -1).
- **ContingencySimilarity** (other pairs) = 1 - 0.5 * sum_ab |P_real(a,b) -
  P_syn(a,b)| of the normalised contingency tables; a numeric column of a mixed pair
  is cut into 10 equal-width bins over its real range (outer bins open-ended).
- **Detection ROC-AUC**: min(n_real, n_syn) rows of each table (seeded), categories
  one-hot, real = 1 / synthetic = 0, stratified k-fold out-of-fold ROC-AUC of a
  logistic regression (median-imputed, standardised) and of HistGradientBoosting.
  Rows with identical features share a fold, so a copied row is not "recognised" by
  its twin in the training fold (copies are measured under privacy). 0.5: the
  classifier cannot tell the tables apart; 1.0: it always can. The SDMetrics
  detection score is 1 - mean_folds(max(AUC_fold, 0.5) * 2 - 1): 1.0
  indistinguishable, 0.0 separable.
- **TSTR / TRTR**: HistGradientBoosting trained on the synthetic (TSTR) or the real
  (TRTR) rows, scored on real holdout rows: ROC-AUC (binary: minority class;
  multiclass: one-vs-rest macro) and F1 (binary: the minority class, the class with
  fewer real rows; multiclass: macro). TSTR near TRTR: the synthetic rows carry what
  the real rows teach.
- **Class share**: the share of each target class; minority_share_drift =
  |s_syn - s_real| / s_real of the real minority class (0: exact).
- **DCR** (distance to closest record): per row, min over real rows of the mean over
  columns of min(|a - b| / range_real, 1) for numbers (0/1 mismatch if the real range
  is 0) and 0/1 mismatch for categories; both missing 0, one missing 1 (a Gower
  distance, SDMetrics' DCR). The holdout rows' DCR is the baseline: synthetic rows
  much closer to the real rows than unseen real rows are suggests memorisation.
  exact_copy_share: rows at distance 0. At most 5,000 rows per table enter.
"""


def write_report(
    report: QualityReport, directory: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Writes report.md, report.json, columns.png and pair_trends.png atomically.

    Args:
      report: a `finetune.quality.QualityReport`.
      directory: the folder to create.
      overwrite: replace an existing report folder (one holding report.json); a
        non-empty folder that is not a report is never replaced.

    Returns:
      The folder.

    Raises:
      FileExistsError: `directory` is a file, or a non-empty folder and `overwrite`
        is False or it holds no report.json.

    Examples:
      >>> import pandas as pd, tempfile, pathlib
      >>> from finetune.quality import quality_report
      >>> df = pd.DataFrame({"x": [0.1 * i for i in range(30)], "c": list("ab") * 15})
      >>> folder = pathlib.Path(tempfile.mkdtemp(), "r")
      >>> out = write_report(quality_report(df, df), folder)
      >>> sorted(p.name for p in out.iterdir())
      ['columns.png', 'pair_trends.png', 'report.json', 'report.md']
    """
    from jaxscm import atomic_directory

    path = Path(directory)
    check_output(path, overwrite)
    with atomic_directory(path, replace=True) as tmp:
        (tmp / "report.json").write_text(json.dumps(report.to_json(), indent=1))
        (tmp / "report.md").write_text(markdown(report))
        _plot_columns(report, tmp / "columns.png")
        _plot_pairs(report, tmp / "pair_trends.png")
    return path


def check_output(path: Path, overwrite: bool) -> None:
    """Refuses an output folder `write_report` must not write (before any work)."""
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a folder; choose another -o")
    if not path.is_dir() or not any(path.iterdir()):
        return
    if not overwrite:
        raise FileExistsError(
            f"{path} already exists; choose another output or pass --overwrite"
        )
    if not (path / "report.json").is_file():
        raise FileExistsError(
            f"{path} exists and is not a report folder (no report.json); not "
            "replacing it (choose another output)"
        )


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def markdown(r: QualityReport) -> str:
    """The report.md text."""
    hold = "none" if r.n_holdout is None else f"{r.n_holdout} rows ({r.holdout_origin})"
    out = [
        "# Synthetic-data quality report\n",
        f"Real: {r.n_real} rows; synthetic: {r.n_synthetic} rows; holdout: {hold}; "
        f"target: {r.target or 'none'}; seed {r.seed}; {r.folds}-fold detection; "
        f"{len(r.columns)} columns.\n",
        "## Headline\n",
        _table(
            ["metric", "value", "meaning"],
            [[k, v, _MEANING[k]] for k, v in r.headline().items()],
        ),
        _DEFINITIONS,
        "## Column shapes\n",
        f"Mean: {_fmt(r.column_shapes)}.\n",
        _table(
            ["column", "kind", "metric", "score", "missing real", "missing synthetic"],
            [
                [c.name, c.kind, c.metric, c.score, c.missing_real, c.missing_synthetic]
                for c in r.columns
            ],
        ),
        "![per-column real vs synthetic](columns.png)\n"
        + (
            f"\nThe plot shows the first {MAX_PLOTTED} of {len(r.columns)} columns.\n"
            if len(r.columns) > MAX_PLOTTED
            else ""
        ),
        "## Column-pair trends\n",
        f"Mean over {len(r.pairs)} pairs: {_fmt(r.column_pair_trends)}. "
        f"The {_TOP_PAIRS} lowest:\n",
        _table(
            ["column a", "column b", "metric", "score", "rho real", "rho synthetic"],
            [
                [p.a, p.b, p.metric, p.score, p.real, p.synthetic]
                for p in sorted(
                    (p for p in r.pairs if p.score is not None), key=lambda p: p.score
                )[:_TOP_PAIRS]
            ],
        ),
        "![|association difference| = 1 - pair score](pair_trends.png)\n",
        "## Detection\n",
        f"{r.detection_rows} rows of each table.\n",
        _table(
            ["detector", "ROC-AUC", "SDMetrics score"],
            [
                ["logistic regression", r.detection_auc_lr, r.detection_score_lr],
                ["HistGradientBoosting", r.detection_auc_hgb, r.detection_score_hgb],
            ],
        ),
        "## Utility\n",
        _utility_text(r),
        "## Privacy\n",
        _table(
            ["rows", "DCR median", "DCR 5th percentile", "exact copies"],
            [
                ["synthetic", r.dcr_median, r.dcr_p5, r.exact_copy_share],
                [
                    "real holdout (baseline)",
                    r.dcr_holdout_median,
                    r.dcr_holdout_p5,
                    r.holdout_exact_copy_share,
                ],
            ],
        ),
        "## SCM\n",
        _scm_text(r),
    ]
    if r.notes:
        out += ["## Notes\n", "".join(f"- {n}\n" for n in r.notes)]
    return "\n".join(out)


def _utility_text(r: QualityReport) -> str:
    parts = []
    if r.holdout_origin not in ("given", "none"):
        parts.append(f"Holdout: {r.holdout_origin}.\n")
    if r.utility_note:
        parts.append(f"{r.utility_note}.\n")
    if r.trtr_auc is not None or r.tstr_auc is not None:
        parts.append(
            _table(
                ["trained on", "holdout ROC-AUC", "holdout F1"],
                [
                    ["real (TRTR)", r.trtr_auc, r.trtr_f1],
                    ["synthetic (TSTR)", r.tstr_auc, r.tstr_f1],
                ],
            )
        )
    if r.class_share_real is not None:
        syn = r.class_share_synthetic or {}
        parts.append(
            f"Class share (minority class {r.minority_class!r}, drift "
            f"{_fmt(r.minority_share_drift)}):\n\n"
            + _table(
                ["class", "real", "synthetic"],
                [[k, v, syn.get(k)] for k, v in r.class_share_real.items()],
            )
        )
    return "\n".join(parts) if parts else "n/a\n"


def _scm_text(r: QualityReport) -> str:
    if r.scm_n_dags is None:
        return "No SCM model given.\n"
    head = (
        f"{len(r.scm_edges)} discovered edges (probability > 0); the share of the "
        f"{r.scm_n_dags} sampled DAGs containing each. The {_TOP_EDGES} most "
        "probable:\n"
    )
    rows = [
        [e.parent, e.child, e.probability, e.dag_share]
        for e in r.scm_edges[:_TOP_EDGES]
    ]
    return head + "\n" + _table(["parent", "child", "P(edge)", "DAG share"], rows)


def _plot_columns(r: QualityReport, path: Path) -> None:
    from matplotlib.figure import Figure

    cols = r.columns[:MAX_PLOTTED]
    ncol = min(5, max(1, len(cols)))
    nrow = -(-len(cols) // ncol)
    fig = Figure(figsize=(3.2 * ncol, 2.4 * nrow), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    for ax, c in zip(axes, cols, strict=False):
        if c.kind == "categorical":
            x = np.arange(len(c.bins))
            ax.bar(x - 0.2, c.real, 0.4, label="real")
            ax.bar(x + 0.2, c.synthetic, 0.4, label="synthetic")
            ax.set_xticks(x, [str(b)[:10] for b in c.bins], rotation=60, fontsize=6)
        else:
            edges = np.asarray(c.bins, float)
            ax.stairs(c.real, edges, label="real", fill=True, alpha=0.5)
            ax.stairs(c.synthetic, edges, label="synthetic", linewidth=1.5)
            ax.tick_params(labelsize=6)
        ax.set_title(f"{c.name[:24]} ({_fmt(c.score)})", fontsize=8)
    for ax in axes[len(cols) :]:
        ax.set_axis_off()
    if cols:
        axes[0].legend(fontsize=6)
    if len(r.columns) > MAX_PLOTTED:
        fig.suptitle(f"first {MAX_PLOTTED} of {len(r.columns)} columns", fontsize=9)
    fig.savefig(path, dpi=80)


def _plot_pairs(r: QualityReport, path: Path) -> None:
    from matplotlib.figure import Figure

    names, m = r.pair_matrix()
    names, m = names[:MAX_HEATMAP], 1.0 - m[:MAX_HEATMAP, :MAX_HEATMAP]
    size = 2.5 + 0.25 * len(names)
    fig = Figure(figsize=(size + 1.0, size), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(np.ma.masked_invalid(m), vmin=0.0, vmax=1.0, cmap="viridis")
    ticks = np.arange(len(names))
    short = [n[:16] for n in names]
    ax.set_xticks(ticks, short, rotation=90, fontsize=6)
    ax.set_yticks(ticks, short, fontsize=6)
    title = "|association difference| = 1 - pair-trend score"
    if len(r.columns) > MAX_HEATMAP:
        title += f" (first {MAX_HEATMAP} columns)"
    ax.set_title(title, fontsize=8)
    fig.colorbar(im, ax=ax)
    fig.savefig(path, dpi=80)
