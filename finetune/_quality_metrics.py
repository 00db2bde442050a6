"""The metric functions of the quality report, on encoded NumPy columns.

`finetune.quality.quality_report` encodes the two tables once (`encode`) and calls
the functions here; each one ignores missing entries in its own documented way (see
the `finetune.quality` module docstring, which defines every metric).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from jaxscm._schema import label

MAX_ONE_HOT = 50  # categories one-hot encoded per column for the classifiers
N_BINS = 10  # SDMetrics' default discretisation of a numeric column in a mixed pair
_CHUNK_CELLS = 4_000_000  # distance-matrix cells per chunk in `dcr`


@dataclasses.dataclass(frozen=True)
class Encoded:
    """One column of several tables: floats (NaN missing) or codes (-1 missing).

    Attributes:
      name: the column.
      kind: "numeric", "integer" or "categorical" (decided on the real table).
      labels: the categories (real ones first, in the project's order, then labels
        seen only in another table, sorted); empty for a numeric column.
      values: table name -> float values (numeric) or int codes into `labels`.
    """

    name: str
    kind: str
    labels: tuple[str, ...]
    values: dict[str, np.ndarray]

    @property
    def numeric(self) -> bool:
        """Whether the column is numeric or integer (compared as numbers)."""
        return self.kind != "categorical"


def encode(
    frames: Mapping[str, pd.DataFrame], name: str, kind: str, real_labels: Sequence[str]
) -> Encoded:
    """Encodes column `name` of every frame; raises naming a non-number cell."""
    if kind != "categorical":
        values = {}
        for table, df in frames.items():
            s = df[name]
            num = pd.to_numeric(s, errors="coerce")
            bad = num.isna() & s.notna()
            if bad.any():
                example = s[bad].iloc[0]
                raise ValueError(
                    f"column {name!r} is {kind} in the real table but the {table} "
                    f"table holds non-numbers in it (e.g. {example!r}); make the two "
                    "tables use the same kinds"
                )
            # Compared at float32 precision, the samplers' own: a float64 grid value
            # (0.35) and its float32 sample differ in the last bits, which a tree
            # detector would otherwise separate perfectly.
            values[table] = (
                num.to_numpy(dtype=float, na_value=np.nan)
                .astype(np.float32)
                .astype(np.float64)
            )
        return Encoded(name, kind, (), values)
    as_labels = {t: _labels(df[name]) for t, df in frames.items()}
    extra = sorted(
        {v for lab in as_labels.values() for v in lab if v is not None}
        - set(real_labels)
    )
    labels = tuple(real_labels) + tuple(extra)
    index = {v: i for i, v in enumerate(labels)}
    values = {
        t: np.array([-1 if v is None else index[v] for v in lab], dtype=np.int64)
        for t, lab in as_labels.items()
    }
    return Encoded(name, kind, labels, values)


def _labels(s: pd.Series) -> list[str | None]:
    missing = s.isna().to_numpy()
    values = s.to_numpy(object)
    return [None if m else label(v) for v, m in zip(values, missing, strict=True)]


# ---------------------------------------------------------------- column shapes


def ks_complement(real: np.ndarray, synthetic: np.ndarray) -> float | None:
    """1 - the two-sample Kolmogorov-Smirnov statistic (missing values dropped)."""
    a = np.sort(real[~np.isnan(real)])
    b = np.sort(synthetic[~np.isnan(synthetic)])
    if a.size == 0 or b.size == 0:
        return None
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / a.size
    cdf_b = np.searchsorted(b, grid, side="right") / b.size
    return float(1.0 - np.max(np.abs(cdf_a - cdf_b)))


def shares(codes: np.ndarray, k: int) -> np.ndarray | None:
    """The share of each of `k` categories among the non-missing codes."""
    c = codes[codes >= 0]
    return None if c.size == 0 else np.bincount(c, minlength=k) / c.size


def tv_complement(real: np.ndarray, synthetic: np.ndarray, k: int) -> float | None:
    """1 - the total-variation distance of the category shares (missing dropped)."""
    p, q = shares(real, k), shares(synthetic, k)
    if p is None or q is None:
        return None
    return float(1.0 - 0.5 * np.abs(p - q).sum())


# ---------------------------------------------------------------- column pairs


def correlation_similarity(
    real: tuple[np.ndarray, np.ndarray], synthetic: tuple[np.ndarray, np.ndarray]
) -> tuple[float | None, float | None, float | None]:
    """(score, rho_real, rho_synthetic): 1 - |rho_r - rho_s| / 2, Pearson.

    Rows missing either value are dropped; a correlation that is undefined (fewer
    than two rows, or a constant column) makes the score None.
    """
    rho = [_pearson(x, y) for x, y in (real, synthetic)]
    if rho[0] is None or rho[1] is None:
        return None, rho[0], rho[1]
    return 1.0 - abs(rho[0] - rho[1]) / 2.0, rho[0], rho[1]


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    if x.size < 2:
        return None
    x, y = x - x.mean(), y - y.mean()
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return None if den == 0 else float(np.clip((x * y).sum() / den, -1.0, 1.0))


def discretise(col: Encoded) -> tuple[dict[str, np.ndarray], int]:
    """Codes of a column for contingency tables: numeric ones in `N_BINS` bins.

    SDMetrics' rule: equal-width bin edges over the real values, the outer edges
    moved to -inf / +inf so synthetic values outside the real range land in the
    first / last bin. Missing values get code -1.
    """
    if not col.numeric:
        return col.values, len(col.labels)
    real = col.values["real"]
    finite = real[~np.isnan(real)]
    edges = np.histogram_bin_edges(finite, bins=N_BINS)[1:-1]
    out = {}
    for t, v in col.values.items():
        codes = np.searchsorted(edges, v, side="right").astype(np.int64)
        out[t] = np.where(np.isnan(v), -1, codes)
    return out, N_BINS


def contingency_similarity(
    real: tuple[np.ndarray, np.ndarray],
    synthetic: tuple[np.ndarray, np.ndarray],
    k: tuple[int, int],
) -> float | None:
    """1 - the total-variation distance of the normalised 2-D contingency tables.

    Rows missing either value (code -1) are dropped.
    """
    tables = []
    for a, b in (real, synthetic):
        ok = (a >= 0) & (b >= 0)
        if not ok.any():
            return None
        counts = np.bincount(a[ok] * k[1] + b[ok], minlength=k[0] * k[1])
        tables.append(counts / ok.sum())
    return float(1.0 - 0.5 * np.abs(tables[0] - tables[1]).sum())


# ---------------------------------------------------------------- classifiers


def design(cols: Sequence[Encoded], table: str, rows: np.ndarray | None = None) -> Any:
    """The feature matrix of `table`: numbers as they are (NaN kept), categories
    one-hot (the `MAX_ONE_HOT` most frequent real ones, the rest in one "other"
    column; a missing category is all zeros)."""
    parts = []
    for col in cols:
        v = col.values[table] if rows is None else col.values[table][rows]
        if col.numeric:
            parts.append(v[:, None].astype(float))
            continue
        real = col.values["real"]
        counts = np.bincount(real[real >= 0], minlength=len(col.labels))
        keep = np.argsort(-counts, kind="stable")[:MAX_ONE_HOT]
        slot = np.full(len(col.labels) + 1, len(keep), dtype=np.int64)
        slot[keep] = np.arange(len(keep))
        slot[-1] = -1  # code -1 (missing) -> no column
        onehot = np.zeros((v.size, len(keep) + 1))
        s = slot[v]
        onehot[np.flatnonzero(s >= 0), s[s >= 0]] = 1.0
        if len(keep) == len(col.labels):
            onehot = onehot[:, :-1]  # no "other" category exists
        parts.append(onehot)
    return np.concatenate(parts, axis=1) if parts else np.zeros((0, 0))


def classifiers(seed: int) -> dict[str, Any]:
    """The two detectors / utility models: "lr" (impute, standardise, logistic
    regression) and "hgb" (HistGradientBoostingClassifier, default parameters)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "lr": make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True),
            StandardScaler(),
            LogisticRegression(max_iter=1000),
        ),
        "hgb": HistGradientBoostingClassifier(random_state=seed),
    }


def fit_quietly(model: Any, x: np.ndarray, y: np.ndarray, notes: list[str]) -> Any:
    """Fits `model`; a logistic regression that did not converge adds a note."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(x, y)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        note = "a logistic regression did not converge in 1000 iterations"
        if note not in notes:
            notes.append(note)
    return model


def detection(
    x: np.ndarray, y: np.ndarray, *, seed: int, folds: int, notes: list[str]
) -> dict[str, tuple[float, float]]:
    """Per detector: (pooled out-of-fold ROC-AUC, SDMetrics detection score).

    `y` is 1 for real rows, 0 for synthetic. The SDMetrics score is
    1 - mean over folds of (max(AUC_fold, 0.5) * 2 - 1). Rows with identical
    features share a fold (stratified group k-fold): with plain k-fold a synthetic
    copy of a real test row sits in the training fold with the other label, and a
    flexible detector learns to score the copy's twin *low* - AUC far below 0.5 for
    identical tables. Copies are the privacy section's business (DCR).
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold

    out = {}
    # NaN != NaN: a sentinel makes rows with the same missing cells one group.
    _, groups = np.unique(np.nan_to_num(x, nan=-np.inf), axis=0, return_inverse=True)
    cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    split = list(cv.split(x, y, groups.ravel()))
    for name, proto in classifiers(seed).items():
        from sklearn.base import clone

        scores = np.zeros(len(y))
        per_fold = []
        for train, test in split:
            model = fit_quietly(clone(proto), x[train], y[train], notes)
            scores[test] = model.predict_proba(x[test])[:, 1]
            per_fold.append(max(roc_auc_score(y[test], scores[test]), 0.5) * 2 - 1)
        out[name] = (float(roc_auc_score(y, scores)), float(1 - np.mean(per_fold)))
    return out


def utility(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    classes: Sequence[int],
    minority: int,
    *,
    seed: int,
    notes: list[str],
    what: str,
) -> tuple[float | None, float | None]:
    """(ROC-AUC, F1) on `test` of an HGB trained on `train`; codes index `classes`.

    Binary: AUC of the minority-class probability, F1 of the minority class.
    Multiclass: one-vs-rest macro AUC over the classes present in `test`, macro F1.
    A class absent from `train` gets probability 0.
    """
    from sklearn.metrics import f1_score, roc_auc_score

    x, y = train
    xt, yt = test
    k = len(classes)
    present = np.unique(y)
    proba = np.zeros((len(yt), k))
    if present.size == 1:
        proba[:, present[0]] = 1.0
        notes.append(f"{what}: the training rows hold one class only; constant model")
    else:
        model = fit_quietly(classifiers(seed)["hgb"], x, y, notes)
        proba[:, model.classes_] = model.predict_proba(xt)
        if present.size < k:
            notes.append(
                f"{what}: {k - present.size} class(es) absent from the training rows; "
                "their probability is 0"
            )
    test_classes = np.unique(yt)
    if test_classes.size < 2:
        notes.append(f"{what}: the holdout holds one class only; no AUC")
        auc = None
    elif k == 2:
        auc = float(roc_auc_score(yt == minority, proba[:, minority]))
    else:
        auc = float(
            np.mean([roc_auc_score(yt == c, proba[:, c]) for c in test_classes])
        )
    pred = np.argmax(proba, axis=1)
    if k == 2:
        f1 = f1_score(yt == minority, pred == minority, zero_division=0)
    else:
        f1 = f1_score(yt, pred, labels=test_classes, average="macro", zero_division=0)
    return auc, float(f1)


# ---------------------------------------------------------------- privacy


def dcr(cols: Sequence[Encoded], query: str, reference: str) -> np.ndarray:
    """Per row of `query`, the distance to its closest row of `reference`.

    The distance of two rows is the mean over columns of: numbers
    min(|a - b| / range, 1) with the range of the reference column (0/1 mismatch
    when that range is 0); categories 0 if equal else 1; both missing 0, one
    missing 1 (SDMetrics' DCR, a Gower distance). Computed in float32, in chunks of
    query rows; category mismatches come from one matrix product of one-hot codes
    (a missing category is one more code, so two missing entries match).
    """
    n_q, n_r = (len(cols[0].values[t]) for t in (query, reference))
    num = [c for c in cols if c.numeric]
    scaled = []
    for col in num:
        q, r = col.values[query], col.values[reference]
        finite = r[~np.isnan(r)]
        rng = float(finite.max() - finite.min()) if finite.size else 0.0
        s = rng if rng > 0 else 1.0
        has_nan = bool(np.isnan(q).any() or np.isnan(r).any())
        scaled.append(((q / s).astype(np.float32), (r / s).astype(np.float32),
                       rng > 0, has_nan))  # fmt: skip
    cat = [c for c in cols if not c.numeric]
    onehot_q, onehot_r = _onehot(cat, query), _onehot(cat, reference)
    step = max(1, _CHUNK_CELLS // max(1, n_r))
    out = np.empty(n_q)
    buf = np.empty((min(step, n_q), n_r), np.float32)
    for start in range(0, n_q, step):
        stop = min(start + step, n_q)
        total = np.full((stop - start, n_r), float(len(cat)), np.float32)
        if cat:
            total -= onehot_q[start:stop] @ onehot_r.T  # mismatches = d_cat - matches
        b = buf[: stop - start]
        for q, r, ranged, has_nan in scaled:
            np.subtract(q[start:stop, None], r[None, :], out=b)
            np.abs(b, out=b)
            if ranged:
                np.minimum(b, 1.0, out=b)
            else:
                np.sign(b, out=b)  # 0 equal, 1 different
            if has_nan:
                qn, rn = np.isnan(q[start:stop]), np.isnan(r)
                b[np.isnan(b)] = 1.0
                b[np.ix_(qn, rn)] = 0.0
            total += b
        out[start:stop] = total.min(axis=1) / len(cols)
    return out


def _onehot(cols: Sequence[Encoded], table: str) -> np.ndarray:
    """Rows one-hot over every category of every column, missing as one more."""
    n = len(cols[0].values[table]) if cols else 0
    width = sum(len(c.labels) + 1 for c in cols)
    m = np.zeros((n, width), np.float32)
    offset = 0
    for c in cols:
        codes = c.values[table]
        codes = np.where(codes < 0, len(c.labels), codes)
        m[np.arange(n), offset + codes] = 1.0
        offset += len(c.labels) + 1
    return m


# ---------------------------------------------------------------- SCM


def scm_edges(
    model: Any, names: Sequence[str], notes: list[str]
) -> tuple[int | None, list[tuple[str, str, float, float]]]:
    """(number of DAGs, [(parent, child, P(edge), share of DAGs with it)]), the
    edges with discovery probability > 0, most probable first."""
    if model is None:
        return None, []
    info = getattr(model, "info", None)
    probs = getattr(info, "edge_probs", None)
    dags = getattr(info, "dags", None)
    if probs is None or dags is None:
        notes.append("SCM: the model carries no fit record (.info); no edge table")
        return None, []
    cols = [c.name for c in info.columns]
    if set(cols) != set(names):
        notes.append(
            f"SCM: the model's columns {cols} differ from the tables' columns; the "
            "edge table is the model's"
        )
    probs, dags = np.asarray(probs, float), np.asarray(dags, bool)
    share = dags.mean(axis=0) if dags.shape[0] else np.zeros_like(probs)
    edges = [
        (cols[i], cols[j], float(probs[i, j]), float(share[i, j]))
        for i, j in zip(*np.nonzero(probs > 0), strict=True)
    ]
    edges.sort(key=lambda e: (-e[2], -e[3], e[0], e[1]))
    return int(dags.shape[0]), edges
