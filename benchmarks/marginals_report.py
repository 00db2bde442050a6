"""Before/after of the marginal fixes (`jaxscm.MarginalOptions`): detection and cost.

For each table, `fit_scm` (8 graphs, seed 0) on a 500-row stratified training split,
once with `MarginalOptions.off()` and once with the default; synthetic rows (the
ensemble as an equal mixture of its members) against the validation rows: an HGB
classifier's ROC-AUC (3-fold stratified, equal row counts), both sides encoded in
the model's schema (one-hot categoricals, numbers in float32, the model's dtype).
Also the compile time and the 8 x 512 call time of `jax.jit(jaxscm.sample)`.

    python -m benchmarks.marginals_report credit-g diabetes kc1 adult
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def detection_auc(real: np.ndarray, fake: np.ndarray, columns, seed: int = 0) -> float:
    """HGB real-vs-synthetic ROC-AUC, 3-fold stratified, equal counts.

    Both sides are (n, d) codes in the model's schema (`columns`): categorical
    columns one-hot, the others as float32 (the model's dtype; a float64 real value
    would otherwise tell itself apart from its float32 twin by its last bits).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    m = min(len(real), len(fake))
    both = np.r_[real[:m], fake[:m]]
    blocks = []
    for j, col in enumerate(columns):
        if col.kind == "categorical":
            blocks.append(np.eye(col.n_categories)[both[:, j].astype(np.int64)])
        else:
            blocks.append(both[:, j : j + 1])
    X = np.concatenate(blocks, axis=1).astype(np.float32)
    y = np.r_[np.zeros(m), np.ones(m)]
    clf = HistGradientBoostingClassifier(max_iter=100, random_state=seed)
    cv = StratifiedKFold(3, shuffle=True, random_state=seed)
    return float(cross_val_score(clf, X, y, cv=cv, scoring="roc_auc").mean())


def synthetic(model, n: int, seed: int = 0) -> np.ndarray:
    """n rows of codes, the members in equal shares."""
    import jax

    import jaxscm

    k = model.n_members
    x = np.asarray(jaxscm.sample(jax.random.key(seed), model, -(-n // k)))
    return np.concatenate(list(x), axis=0)[:n]


def _known_labels(df, columns) -> np.ndarray:
    """Rows whose categorical labels all occur in the training schema (validation
    rows may hold a label the 500 training rows lack)."""
    from jaxscm import SchemaError

    keep = np.ones(len(df), bool)
    for col in columns:
        if col.kind != "categorical":
            continue
        for i, v in enumerate(df[col.name].to_numpy(dtype=object, na_value=None)):
            try:
                col.code_of(np.array([v], dtype=object))
            except SchemaError:
                keep[i] = False
    return keep


def timing(model, reps: int = 5) -> dict[str, float]:
    """Compile seconds and median call seconds of jit(sample) for 512 rows."""
    import jax

    import jaxscm

    fn = jax.jit(jaxscm.sample, static_argnums=2)
    t = time.perf_counter()
    compiled = fn.lower(jax.random.key(0), model, 512).compile()
    comp = time.perf_counter() - t
    calls = []
    for r in range(reps):
        t = time.perf_counter()
        compiled(jax.random.key(r), model).block_until_ready()
        calls.append(time.perf_counter() - t)
    return {"compile_s": comp, "call_s": float(np.median(calls))}


def main(argv: list[str] | None = None) -> int:
    __import__("jaxscm").enable_compilation_cache()  # README: CAUSALMIXFT_JAX_CACHE
    import jaxscm
    from benchmarks.datasets import make_split
    from jaxscm.fitting import prepare

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("tables", nargs="+")
    p.add_argument("--n-train", type=int, default=500)
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args(argv)
    out = []
    for name in args.tables:
        s = make_split(name, args.n_train, seed=0)
        train = s.X_train.assign(**{s.y_train.name: s.y_train})
        real = s.X_val.assign(**{s.y_val.name: s.y_val})
        row: dict = {"table": name, "n_train": len(train), "n_real": len(real)}
        for tag, opts in (
            ("off", jaxscm.MarginalOptions.off()),
            ("on", jaxscm.MarginalOptions()),
        ):
            t = time.perf_counter()
            model = jaxscm.fit_scm(
                train, s.y_train.name, seed=0, progress=False, marginals=opts
            )
            row[f"fit_s_{tag}"] = time.perf_counter() - t
            seen = _known_labels(real, model.columns)
            row["n_real_known"] = int(seen.sum())
            codes = prepare(real[seen], s.y_val.name, columns=model.columns).codes
            fake = synthetic(model, len(codes))
            row[f"auc_{tag}"] = detection_auc(codes, fake, model.columns)
            row.update({f"{k}_{tag}": v for k, v in timing(model).items()})
            row[f"groups_{tag}"] = sum(len(g) for g in model.groups)
            if tag == "on":
                used = [m for ms in model.info.mechanisms for m in ms.values()]
                row["fixes"] = sorted({m.split("+", 1)[1] for m in used if "+" in m})
        print(json.dumps(row), flush=True)
        out.append(row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
