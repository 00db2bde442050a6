"""The sections of `finetune.quality.quality_report`: encoded columns in, fields out."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from finetune import _quality_metrics as qm
from finetune._quality_result import ColumnShape, PairTrend
from jaxscm._schema import ordered_labels

MAX_PRIVACY_ROWS = 5000
_HIST_BINS = 20
_BAR_LABELS = 20


def mean(values: Any) -> float | None:
    v = [x for x in values if x is not None]
    return float(np.mean(v)) if v else None


def kinds(real: pd.DataFrame, target: str | None) -> dict[str, tuple[str, tuple]]:
    """Column -> (kind, real labels), by `jaxscm.infer_schema`'s rules."""
    from jaxscm import infer_schema

    names = [str(c) for c in real.columns]
    df = real.rename(columns=str)
    const = {}
    for n in names:
        values = df[n].dropna()
        if values.empty:
            raise ValueError(
                f"column {n!r} has only missing values in the real table; drop it "
                "from both tables"
            )
        if values.nunique() == 1:
            if n == target:
                raise ValueError(
                    f"target column {n!r} has one class in the real table; utility "
                    "needs two"
                )
            const[n] = ("categorical", ordered_labels(values.unique()))
    rest = [n for n in names if n not in const]
    schema = infer_schema(df[rest], target, max_categories=10**9) if rest else ()
    inferred = {c.name: (c.kind, c.categories) for c in schema}
    return {n: const.get(n) or inferred[n] for n in names}


def shape(col: qm.Encoded) -> ColumnShape:
    r, s = col.values["real"], col.values["synthetic"]
    if col.numeric:
        miss = (float(np.isnan(r).mean()), float(np.isnan(s).mean()))
        both = np.concatenate([r, s])
        edges = np.histogram_bin_edges(both[~np.isnan(both)], bins=_HIST_BINS)
        hist = [np.histogram(v[~np.isnan(v)], edges)[0] for v in (r, s)]
        real_h, syn_h = (h / max(h.sum(), 1) for h in hist)
        return ColumnShape(
            col.name, col.kind, "KSComplement", qm.ks_complement(r, s), *miss,
            tuple(edges.tolist()), tuple(real_h.tolist()), tuple(syn_h.tolist()),
        )  # fmt: skip
    k = len(col.labels)
    miss = (float((r < 0).mean()), float((s < 0).mean()))
    zero = np.zeros(k)
    p = qm.shares(r, k)
    q = qm.shares(s, k)
    p, q = (zero if x is None else x for x in (p, q))
    order = np.argsort(-(p + 1e-9 * q), kind="stable")
    top, rest = order[:_BAR_LABELS], order[_BAR_LABELS:]
    bins = [col.labels[i] for i in top]
    pr, qs = list(p[top]), list(q[top])
    if rest.size:
        bins.append("(other)")
        pr.append(float(p[rest].sum()))
        qs.append(float(q[rest].sum()))
    return ColumnShape(
        col.name, col.kind, "TVComplement", qm.tv_complement(r, s, k), *miss,
        tuple(bins), tuple(float(x) for x in pr), tuple(float(x) for x in qs),
    )  # fmt: skip


def pairs(cols: Sequence[qm.Encoded]) -> tuple[PairTrend, ...]:
    binned = [qm.discretise(c) for c in cols]
    out = []
    for i, a in enumerate(cols):
        for j in range(i + 1, len(cols)):
            b = cols[j]
            if a.numeric and b.numeric:
                score, rho_r, rho_s = qm.correlation_similarity(
                    (a.values["real"], b.values["real"]),
                    (a.values["synthetic"], b.values["synthetic"]),
                )
                out.append(
                    PairTrend(
                        a.name, b.name, "CorrelationSimilarity", score, rho_r, rho_s
                    )
                )
                continue
            (ca, ka), (cb, kb) = binned[i], binned[j]
            score = qm.contingency_similarity(
                (ca["real"], cb["real"]), (ca["synthetic"], cb["synthetic"]), (ka, kb)
            )
            out.append(
                PairTrend(a.name, b.name, "ContingencySimilarity", score, None, None)
            )
    return tuple(out)


def detection(
    cols: Sequence[qm.Encoded], rng: np.random.Generator, seed: int, folds: int,
    notes: list[str],
) -> tuple[dict[str, tuple[float, float]], int]:  # fmt: skip
    n_r, n_s = (len(cols[0].values[t]) for t in ("real", "synthetic"))
    m = min(n_r, n_s)
    if m < folds:
        notes.append(f"detection: {m} row(s) per table, fewer than {folds} folds")
        return {}, m
    rows_r = np.sort(rng.choice(n_r, m, replace=False))
    rows_s = np.sort(rng.choice(n_s, m, replace=False))
    x = np.concatenate(
        [qm.design(cols, "real", rows_r), qm.design(cols, "synthetic", rows_s)]
    )
    y = np.concatenate([np.ones(m, np.int64), np.zeros(m, np.int64)])
    return qm.detection(x, y, seed=seed, folds=folds, notes=notes), m


def utility(
    cols: Sequence[qm.Encoded], target: str | None, has_holdout: bool, seed: int,
    notes: list[str],
) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = dict.fromkeys(
        "tstr_auc trtr_auc tstr_f1 trtr_f1 class_share_real class_share_synthetic "
        "minority_class minority_share_drift".split()
    )
    if target is None:
        out["utility_note"] = "no target column given: no utility, no class share"
        return out
    tcol = next(c for c in cols if c.name == target)
    k = len(tcol.labels)
    y = {t: v for t, v in tcol.values.items()}
    k_real = int(y["real"].max()) + 1  # real labels come first
    counts = {t: np.bincount(v[v >= 0], minlength=k) for t, v in y.items()}
    share = {t: c / max(c.sum(), 1) for t, c in counts.items()}
    out["class_share_real"] = dict(
        zip(tcol.labels, share["real"].tolist(), strict=True)
    )
    out["class_share_synthetic"] = dict(
        zip(tcol.labels, share["synthetic"].tolist(), strict=True)
    )
    minority = int(np.argmin(counts["real"][:k_real]))
    out["minority_class"] = tcol.labels[minority]
    s_r, s_s = share["real"][minority], share["synthetic"][minority]
    out["minority_share_drift"] = float(abs(s_s - s_r) / s_r)
    if not has_holdout:
        out["utility_note"] = (
            "no holdout table given: utility (TSTR/TRTR) needs real rows the "
            "generator never saw, so it is not computed"
        )
        return out
    feats = [c for c in cols if c.name != target]
    data = {}
    for t in ("real", "synthetic", "holdout"):
        keep = (y[t] >= 0) & (y[t] < k_real)
        dropped = int((~keep).sum())
        if dropped:
            notes.append(
                f"utility: {dropped} {t} row(s) with a missing target or a class the "
                "real table lacks were left out"
            )
        rows = np.flatnonzero(keep)
        x = qm.design(feats, t, rows) if feats else np.zeros((rows.size, 0))
        data[t] = (x, y[t][rows])
    if data["synthetic"][1].size == 0 or data["holdout"][1].size == 0:
        out["utility_note"] = "no usable synthetic or holdout rows for utility"
        return out
    classes = list(range(k_real))
    for name, train in (("trtr", "real"), ("tstr", "synthetic")):
        auc, f1 = qm.utility(
            data[train], data["holdout"], classes, minority, seed=seed, notes=notes,
            what=name.upper(),
        )  # fmt: skip
        out[f"{name}_auc"], out[f"{name}_f1"] = auc, f1
    out["utility_note"] = None
    return out


def privacy(
    cols: Sequence[qm.Encoded], has_holdout: bool, rng: np.random.Generator,
    notes: list[str],
) -> dict[str, Any]:  # fmt: skip
    tables = ("real", "synthetic", "holdout") if has_holdout else ("real", "synthetic")
    sub = {}
    for t in tables:
        n = len(cols[0].values[t])
        if n > MAX_PRIVACY_ROWS:
            notes.append(f"privacy: {MAX_PRIVACY_ROWS} of the {n} {t} rows (seeded)")
            sub[t] = np.sort(rng.choice(n, MAX_PRIVACY_ROWS, replace=False))
    taken = [
        dataclasses.replace(
            c, values={t: v[sub[t]] if t in sub else v for t, v in c.values.items()}
        )
        for c in cols
    ]
    d = qm.dcr(taken, "synthetic", "real")
    out = {
        "dcr_median": float(np.median(d)),
        "dcr_p5": float(np.percentile(d, 5)),
        "exact_copy_share": float(np.mean(d == 0)),
        "dcr_holdout_median": None,
        "dcr_holdout_p5": None,
        "holdout_exact_copy_share": None,
    }
    if has_holdout:
        h = qm.dcr(taken, "holdout", "real")
        out["dcr_holdout_median"] = float(np.median(h))
        out["dcr_holdout_p5"] = float(np.percentile(h, 5))
        out["holdout_exact_copy_share"] = float(np.mean(h == 0))
    return out
