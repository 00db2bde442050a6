"""`causalmixft finetune data.csv --target y -o run_dir`: CausalMixFT on a CSV file.

Writes into run_dir: ``model/`` (`CausalMixFTClassifier.save`), ``history.csv`` (per
evaluation), ``steps.csv`` (per step), ``curve.png`` and ``report.md``. The run
checkpoints into ``run_dir/checkpoint``; rerunning the same command after an
interruption resumes from there (the SCM ensemble is refitted with the same seed,
which gives the same ensemble).
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers the subcommand's flags (one per estimator option)."""
    p = parser
    p.add_argument("data", help="CSV file (header row; string columns are categorical)")
    p.add_argument("--target", required=True, help="the label column")
    p.add_argument("-o", "--out", required=True, help="run folder to write")
    p.add_argument(
        "--augment",
        choices=["causalmix", "none", "scm_only"],
        default="causalmix",
        help="causalmix (default), none (plain "
        "fine-tuning) or scm_only (synthetic rows only)",
    )
    p.add_argument(
        "--tfm",
        default=None,
        help="TFM checkpoint path or published name (default: the shipped "
        "offline checkpoint)",
    )
    p.add_argument("--max-steps", type=int, default=100)
    p.add_argument("--time-limit", type=float, default=None, help="seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--ratio",
        type=float,
        default=1.0,
        help="synthetic rows per real row in each meta-batch",
    )
    p.add_argument("--ratio-end", type=float, default=None)
    p.add_argument(
        "--ratio-schedule", choices=["constant", "linear", "cosine"], default="constant"
    )
    p.add_argument("--placement", choices=["context", "query", "both"], default="both")
    p.add_argument("--members", choices=["pooled", "per_step"], default="pooled")
    p.add_argument("--query-fraction", type=float, default=0.3)
    p.add_argument(
        "--validation", choices=["real", "synthetic", "both"], default="real"
    )
    p.add_argument("--validation-fraction", type=float, default=0.25)
    p.add_argument(
        "--validation-in-context",
        choices=["auto", "yes", "no"],
        default="auto",
        help="add the held-out validation rows to the inference context (auto: only "
        "when the pre-trained weights were kept)",
    )
    p.add_argument(
        "--random-preprocessing",
        action="store_true",
        help="a new TabPFN preprocessing seed every step",
    )
    p.add_argument("--eval-metric", choices=["roc_auc", "log_loss"], default="roc_auc")
    p.add_argument("--eval-every", type=int, default=10)
    p.add_argument("--patience", type=int, default=5, help="0: no early stopping")
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument(
        "--lr-schedule", choices=["constant", "linear", "cosine"], default="cosine"
    )
    p.add_argument("--n-estimators", type=int, default=4)
    p.add_argument("--n-estimators-train", type=int, default=2)
    p.add_argument(
        "--inference-context", choices=["real", "real+synthetic"], default="real"
    )
    p.add_argument("--n-dags", type=int, default=8, help="graphs in the SCM ensemble")
    p.add_argument(
        "--test-fraction",
        type=float,
        default=0.0,
        help="hold out this stratified share of rows as a test set, scored "
        "in the report (default 0: train on every row)",
    )
    p.add_argument("--device", default="cpu")


def run(args: argparse.Namespace) -> int:
    """Fits, saves and reports; returns the exit status."""
    import time
    from pathlib import Path

    import numpy as np

    from benchmarks.datasets import load_dataset
    from finetune._estimator import CausalMixFTClassifier
    from finetune._mixing import stratified_split
    from finetune._report import (
        ensure_new_dir,
        markdown_table,
        plot_curves,
        write_csv,
        write_text,
    )

    out = ensure_new_dir(args.out, "model")
    X, y, meta = load_dataset(Path(args.data), target=args.target)
    X_test = y_test = None
    if args.test_fraction:
        if not 0 < args.test_fraction < 1:
            print("--test-fraction must be in (0, 1)", file=sys.stderr)
            return 2
        codes = np.unique(y.to_numpy(), return_inverse=True)[1]
        tr, te = stratified_split(
            np.random.default_rng([args.seed, 7]), codes, args.test_fraction
        )
        X, y, X_test, y_test = X.iloc[tr], y.iloc[tr], X.iloc[te], y.iloc[te]
    est = CausalMixFTClassifier(
        args.augment,
        args.tfm,
        max_steps=args.max_steps,
        time_limit=args.time_limit,
        random_state=args.seed,
        ratio=args.ratio,
        ratio_end=args.ratio_end,
        ratio_schedule=args.ratio_schedule,
        placement=args.placement,
        members=args.members,
        query_fraction=args.query_fraction,
        validation=args.validation,
        validation_fraction=args.validation_fraction,
        eval_metric=args.eval_metric,
        eval_every=args.eval_every,
        patience=args.patience or None,
        lr=args.lr,
        lr_schedule=args.lr_schedule,
        n_estimators=args.n_estimators,
        n_estimators_train=args.n_estimators_train,
        inference_context=args.inference_context,
        n_dags=args.n_dags,
        validation_in_context={"auto": None, "yes": True, "no": False}[
            args.validation_in_context
        ],
        fixed_preprocessing=not args.random_preprocessing,
        device=args.device,
        checkpoint_dir=str(out / "checkpoint"),
        verbose=True,
    )
    print(
        f"{args.data}: {len(y)} training rows, {X.shape[1]} features, "
        f"{len(np.unique(y.to_numpy()))} classes; augment={args.augment}"
    )
    t0 = time.perf_counter()
    try:
        est.fit(X, y, X_test=X_test, y_test=y_test)
    except KeyboardInterrupt:
        print(
            f"\ninterrupted; rerun the same command to resume from "
            f"{out / 'checkpoint'}",
            file=sys.stderr,
        )
        raise
    wall = time.perf_counter() - t0
    write_csv(out / "history.csv", est.history_)
    write_csv(out / "steps.csv", est.steps_)
    plot_curves(
        out / "curve.png",
        {args.augment: est},
        metric=args.eval_metric,
        title=f"{Path(args.data).name}: {args.augment}",
    )
    est.save(out / "model")
    import shutil

    shutil.rmtree(out / "checkpoint", ignore_errors=True)  # the run is complete
    metric = args.eval_metric
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
        f"# CausalMixFT run: {Path(args.data).name}",
        "",
        f"- command: `causalmixft {' '.join(sys.argv[1:])}`",
        f"- rows: {len(y)} train ({X.shape[1]} features), "
        f"{0 if y_test is None else len(y_test)} test; target `{args.target}`, "
        f"classes {[str(c) for c in est.classes_]}",
        f"- augment: {args.augment}; ratio {args.ratio}; placement {args.placement}; "
        f"validation {args.validation}; lr {args.lr}",
        f"- stopped: {est.stop_reason_} after {len(est.steps_)} steps; kept the "
        f"weights of step {est.best_step_}"
        + (" (the pre-trained ones: nothing beat them)" if est.best_step_ == 0 else ""),
        f"- time: {wall:.1f} s in all, SCM ensemble fit {est.scm_seconds_:.1f} s, "
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
    write_text(out / "report.md", "\n".join(lines))
    print("\n".join(lines[2:9]))
    print(f"wrote {out}/model, history.csv, steps.csv, curve.png, report.md")
    return 0
