"""Which label mechanism keeps the feature -> label signal at small n (issue 12).

For a development subset of `paper33` (every 3rd table in `list_datasets("paper33")`
order, leaving out those with more than 30 features: splice and sylva, for the CPU
budget), at 128 and 500 training rows, seed 0, `make_split(name, n, 0, n_val=...)`:
discovery runs once per (table, n) and the node fits are shared (only the target
is refitted per rule, `jaxscm.fitting._build.fit_on`). For each candidate
`LabelOptions` (`CANDIDATES`):

* TSTR: HistGradientBoostingClassifier trained on as many synthetic rows as real
  training rows (drawn evenly from the ensemble's members), ROC-AUC (one-vs-rest
  macro for multiclass) on the VALIDATION split; TRTR: the same on the real
  training rows. Both see the table's codes (`prepare` with the fitted schema).
* minority share drift: (synthetic share - training share) / training share of the
  training rows' rarest class, on 1000 rows per member (the same draw).

Test splits are never read. Resumable per (table, n): finished records are kept in
`benchmarks/results/label_mechanism.json`; the `.md` is rewritten from them.

    OMP_NUM_THREADS=1 python -m benchmarks.label_mechanism [--n-dags 4]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from jaxscm import atomic_write
from jaxscm.fitting import LabelOptions

RESULTS = Path(__file__).parent / "results"
SIZES = (128, 500)
N_VAL = 500  # validation rows (fewer where the table is small)
CANDIDATES: dict[str, LabelOptions] = {
    "off": LabelOptions.off(),
    "all+same": LabelOptions(parents="all", classifier="same", class_share=False),
    "all+same+share": LabelOptions(parents="all", classifier="same"),
    "all+lcv": LabelOptions(parents="all", classifier="logistic_cv", class_share=False),
    "all+lcv+share": LabelOptions(parents="all", classifier="logistic_cv"),
    "thr0.1+lcv": LabelOptions(
        parents="threshold", threshold=0.1, classifier="logistic_cv", class_share=False
    ),
}


# Frozen from the validation numbers below (written once the study had run).
DECISION = (
    "**Default chosen: `all+same+share` = `LabelOptions()`** (parents: every "
    "non-descendant of the target; predictor by the `mechanisms` rule like every "
    "node; class share calibrated). It has the best median TSTR-TRTR among the "
    "candidates at 128 rows and keeps the minority-share drift within 10% where "
    "the uncalibrated rules drift up to 20%. `logistic_cv` (L2, C by CV log-loss) "
    "loses signal (small C) and the threshold rule adds too few parents. 500 rows: "
    "see the table (not run where absent: CPU budget)."
)


NOTES = (
    "Notes: n_dags=4 (not 8) and 128 rows for all 9 tables, 500 rows only for the "
    "tables listed, to stay in the CPU budget of a shared 2-core machine (about 35 "
    "wall-minutes for the 128-row pass). Targets of issue 12 (TSTR within 0.02 of "
    "TRTR) are NOT met: the default halves the gap of `off` but stays about 0.05 "
    "below TRTR in median. The first three 128-row records (credit-g, "
    "website_phishing, credit-approval) encoded the validation rows with "
    "`prepare` (missing values imputed from the validation rows), the later ones "
    "with `_encode_like` (training mode/median; the change came with a table "
    "holding a label unseen in training); only rows with missing values differ."
)


def dev_tables() -> list[str]:
    """The development subset (rule in the module doc)."""
    from benchmarks.datasets import list_datasets, load_dataset

    names = list_datasets("paper33")[::3]
    return [n for n in names if load_dataset(n)[0].shape[1] <= 30]


def _auc(y: np.ndarray, proba: np.ndarray, classes: np.ndarray, k: int) -> float:
    from sklearn.metrics import roc_auc_score

    full = np.zeros((proba.shape[0], k))
    full[:, classes.astype(int)] = proba
    if k == 2:
        return float(roc_auc_score(y, full[:, 1]))
    full = full / np.maximum(full.sum(1, keepdims=True), 1e-12)
    return float(roc_auc_score(y, full, multi_class="ovr", labels=np.arange(k)))


def _hgb_auc(X: np.ndarray, y: np.ndarray, Xv: np.ndarray, yv: np.ndarray, k: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    if len(np.unique(y)) < 2:
        return 0.5  # one class only: a constant score
    m = HistGradientBoostingClassifier(random_state=0).fit(X, y)
    return _auc(yv, m.predict_proba(Xv), m.classes_, k)


def _encode_like(df: Any, cols: Any, codes: np.ndarray) -> np.ndarray:
    """`df` in the training schema; a missing value or a label the training rows
    lack becomes the training mode (categorical) or median (numeric)."""
    import pandas as pd

    from jaxscm import SchemaError

    def code(c: Any, x: Any, mode: float) -> float:
        try:
            return float(c.code_of(np.array([x], dtype=object))[0])
        except SchemaError:
            return mode

    out = np.zeros((len(df), len(cols)))
    for j, c in enumerate(cols):
        v = df[c.name].to_numpy(dtype=object)
        if c.kind == "categorical":
            mode = float(np.bincount(codes[:, j].astype(int)).argmax())
            out[:, j] = [mode if pd.isna(x) else code(c, x, mode) for x in v]
        else:
            x = pd.to_numeric(pd.Series(v), errors="coerce").to_numpy(float)
            out[:, j] = np.where(np.isnan(x), np.median(codes[:, j]), x)
    return out


def dev_split(name: str, n: int) -> tuple[Any, Any, str, Any]:
    """(train, validation, target, prepared train) of one (table, n), seed 0."""
    import pandas as pd

    from benchmarks.datasets import load_dataset, make_split
    from jaxscm.fitting import prepare

    rows = load_dataset(name)[0].shape[0]
    s = make_split(name, n, 0, n_val=min(N_VAL, (rows - n) // 2))
    target = s.y_train.name or "target"
    # A feature constant on the training rows carries nothing (and `prepare` refuses
    # it): dropped from train and validation alike.
    keep = [c for c in s.X_train if s.X_train[c].nunique(dropna=False) > 1]
    train = pd.concat([s.X_train[keep], s.y_train.rename(target)], axis=1)
    val = pd.concat([s.X_val[keep], s.y_val.rename(target)], axis=1)
    return train, val, target, prepare(train, target)


def run_one(name: str, n: int, n_dags: int) -> dict[str, Any]:
    """All candidates on one (table, n)."""
    import jax

    import jaxscm
    from jaxscm.fitting import DiscoveryOptions, discover
    from jaxscm.fitting._build import fit_on

    t0 = time.perf_counter()
    _, val, _, table = dev_split(name, n)
    cols = table.columns
    t = next(j for j, c in enumerate(cols) if c.is_target)
    k = cols[t].n_categories
    vcodes = _encode_like(val, cols, table.codes)
    feats = [j for j in range(len(cols)) if j != t]
    X, y = table.codes[:, feats], table.codes[:, t].astype(int)
    Xv, yv = vcodes[:, feats], vcodes[:, t].astype(int)
    share = np.bincount(y, minlength=k) / y.shape[0]
    minority = int(np.argmin(np.where(share > 0, share, np.inf)))
    rec: dict[str, Any] = {"table": name, "n": n, "n_val": int(yv.shape[0])}
    rec["trtr"] = _hgb_auc(X, y, Xv, yv, k)
    rec["minority_share_train"] = float(share[minority])
    td = time.perf_counter()
    probs = discover(table, options=DiscoveryOptions(), seed=0, progress=False)
    rec["seconds_discover"] = time.perf_counter() - td
    cache: dict[Any, Any] = {}
    rec["candidates"] = {}
    for cname, label in CANDIDATES.items():
        tc = time.perf_counter()
        model = fit_on(
            table,
            probs,
            n_dags=n_dags,
            seed=0,
            req=np.zeros((len(cols),) * 2, bool),
            forb=np.zeros((len(cols),) * 2, bool),
            mechanisms="fast",
            label=label,
            dtype=jax.numpy.float32,
            progress=False,
            n_jobs=1,
            timings={},
            t_all=time.perf_counter(),
            options={},
            cache=cache,
        )
        # One draw (one compiled sampler): the first `per` rows of each member
        # train the TSTR model, all 1000 measure the share.
        per = -(-n // n_dags)
        big = np.asarray(jaxscm.sample(jax.random.key(1), model, max(per, 1000)))
        syn = big[:, :per].reshape(-1, big.shape[-1])[:n]
        tstr = _hgb_auc(syn[:, feats], syn[:, t].astype(int), Xv, yv, k)
        synth_share = float((big[..., t].astype(int) == minority).mean())
        rec["candidates"][cname] = {
            "tstr": tstr,
            "minority_share_synth": synth_share,
            "drift": (synth_share - share[minority]) / share[minority],
            "target_parents": float(model.info.dags[:, :, t].sum(1).mean()),
            "target_mechanism": model.info.mechanisms[0][cols[t].name],
            "seconds": time.perf_counter() - tc,
        }
    rec["seconds"] = time.perf_counter() - t0
    return rec


def report(records: list[dict[str, Any]], n_dags: int) -> str:
    """The markdown summary."""
    lines = [
        "# Label mechanism study (issue 12)",
        "",
        "Written by `python -m benchmarks.label_mechanism`; VALIDATION splits of the "
        "development subset (module doc), seed 0, "
        f"n_dags={n_dags}, default discovery. TSTR - TRTR: HGB on synthetic minus "
        "HGB on the real training rows, ROC-AUC on the validation rows. drift: "
        "relative minority-share error.",
        "",
        DECISION,
        "",
        NOTES,
        "",
        "| candidate | n | median TSTR-TRTR | mean TSTR-TRTR | median abs drift | "
        "max abs drift | tables |",
        "|---|---|---|---|---|---|---|",
    ]
    for cname in CANDIDATES:
        for n in SIZES:
            rs = [r for r in records if r["n"] == n and cname in r["candidates"]]
            if not rs:
                continue
            gap = [r["candidates"][cname]["tstr"] - r["trtr"] for r in rs]
            drift = [abs(r["candidates"][cname]["drift"]) for r in rs]
            lines.append(
                f"| {cname} | {n} | {np.median(gap):+.3f} | {np.mean(gap):+.3f} | "
                f"{np.median(drift):.3f} | {np.max(drift):.3f} | {len(rs)} |"
            )
    lines += [
        "",
        "Per table (TRTR, then TSTR per candidate; drift in brackets):",
        "",
        "| table | n | TRTR | " + " | ".join(CANDIDATES) + " |",
        "|---|---|---|" + "---|" * len(CANDIDATES),
    ]
    for r in records:
        cells = [
            f"{c['tstr']:.3f} ({c['drift']:+.2f})"
            for c in (r["candidates"][k] for k in CANDIDATES if k in r["candidates"])
        ]
        lines.append(
            f"| {r['table']} | {r['n']} | {r['trtr']:.3f} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Runs the study, resuming from the existing json."""
    __import__("jaxscm").enable_compilation_cache()  # README: CAUSALMIXFT_JAX_CACHE
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-dags", type=int, default=4)
    p.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    p.add_argument("--tables", nargs="+", default=None)
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    path = RESULTS / "label_mechanism.json"
    done = json.loads(path.read_text())["records"] if path.exists() else []
    for n in args.sizes:
        for name in args.tables or dev_tables():
            if any(r["table"] == name and r["n"] == n for r in done):
                continue
            rec = run_one(name, n, args.n_dags)
            done.append(rec)
            print(
                f"{name} n={n} trtr={rec['trtr']:.3f} "
                + " ".join(
                    f"{k}={v['tstr']:.3f}/{v['drift']:+.2f}"
                    for k, v in rec["candidates"].items()
                )
                + f" ({rec['seconds']:.0f}s)",
                flush=True,
            )
            with atomic_write(path, "w") as f:
                json.dump({"n_dags": args.n_dags, "records": done}, f, indent=1)
            with atomic_write(RESULTS / "label_mechanism.md", "w") as f:
                f.write(report(done, args.n_dags))


if __name__ == "__main__":
    main()
