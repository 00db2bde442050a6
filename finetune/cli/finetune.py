"""`causalmixft finetune data.csv --target y -o run_dir`: CausalMixFT on a table.

`bridge.read_table` reads the CSV/Parquet file, `finetune._run` splits off the target
(and an optional test share) and `finetune_to_folder` fits and writes run_dir:
``model/`` (`CausalMixFTClassifier.save`), ``history.csv`` (per evaluation),
``steps.csv`` (per step), ``curve.png`` and ``report.md``. The run checkpoints into
``run_dir/checkpoint``; rerunning the same command after an interruption resumes
from there (the SCM ensemble is refitted with the same seed, which gives the same
ensemble).

``--augment`` takes "none", "causalmix", "scm_only" or any generator of
`finetune.augmenters.names()` (``--augment smote``), with its options as
``--augment-option key=value`` (repeatable; a value is read as JSON when it parses,
else kept as a string: ``--augment-option k_neighbors=3``). The run folder's
``report.md`` and ``model/estimator.json`` record the generator, its options and
whether it streamed fresh rows or drew one pool. ``--synthetic-classes balanced``
(or ``yes=0.7,no=0.3``) sets the class mix of every step's synthetic rows
(`FinetuneConfig.synthetic_classes`); a malformed value or an unknown label exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from finetune.cli import (
    check_device,
    count_type,
    parse_classes,
    positive_type,
    probability_type,
    seed_type,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers the subcommand's flags (one per estimator option)."""
    p = parser
    p.add_argument(
        "data",
        help="CSV/TSV/Parquet file (header row; string columns are categorical)",
    )
    p.add_argument("--target", required=True, help="the label column")
    p.add_argument("-o", "--out", required=True, help="run folder to write")
    p.add_argument(
        "--augment",
        choices=augment_names(),
        default="causalmix",
        metavar="NAME",
        help="causalmix (default), none (plain fine-tuning), scm_only (synthetic "
        f"rows only) or another generator: {', '.join(augment_names())}",
    )
    p.add_argument(
        "--augment-option",
        type=option_type,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option of the --augment generator (repeatable; VALUE is JSON, "
        "else a string)",
    )
    p.add_argument(
        "--synthetic-classes",
        default=None,
        metavar="balanced|LABEL=SHARE[,LABEL=SHARE]",
        help="class mix of every step's synthetic rows: balanced, or label=share "
        "pairs (default: the generator's own classes)",
    )
    p.add_argument(
        "--tfm",
        default=None,
        help="TFM checkpoint path or published name (default: the shipped "
        "offline checkpoint)",
    )
    p.add_argument("--max-steps", type=count_type("--max-steps", 0), default=100)
    p.add_argument(
        "--time-limit", type=positive_type("--time-limit"), default=None, help="seconds"
    )
    p.add_argument("--seed", type=seed_type(), default=0)
    p.add_argument(
        "--ratio",
        type=positive_type("--ratio", zero=True),
        default=1.0,
        help="synthetic rows per real row in each meta-batch",
    )
    p.add_argument(
        "--ratio-end", type=positive_type("--ratio-end", zero=True), default=None
    )
    p.add_argument(
        "--ratio-schedule", choices=["constant", "linear", "cosine"], default="constant"
    )
    p.add_argument("--placement", choices=["context", "query", "both"], default="both")
    p.add_argument("--members", choices=["pooled", "per_step"], default="pooled")
    p.add_argument(
        "--query-fraction", type=probability_type("--query-fraction"), default=0.3
    )
    p.add_argument(
        "--validation", choices=["real", "synthetic", "both"], default="real"
    )
    p.add_argument(
        "--validation-fraction",
        type=probability_type("--validation-fraction"),
        default=0.25,
    )
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
    p.add_argument("--eval-every", type=count_type("--eval-every"), default=10)
    p.add_argument(
        "--patience",
        type=count_type("--patience", 0),
        default=5,
        help="0: no early stopping",
    )
    p.add_argument("--lr", type=positive_type("--lr"), default=3e-4)
    p.add_argument(
        "--lr-schedule", choices=["constant", "linear", "cosine"], default="cosine"
    )
    p.add_argument("--n-estimators", type=count_type("--n-estimators"), default=4)
    p.add_argument(
        "--n-estimators-train", type=count_type("--n-estimators-train"), default=2
    )
    p.add_argument(
        "--inference-context", choices=["real", "real+synthetic"], default="real"
    )
    p.add_argument(
        "--n-dags",
        type=count_type("--n-dags"),
        default=8,
        help="graphs in the SCM ensemble",
    )
    p.add_argument(
        "--test-fraction",
        type=positive_type("--test-fraction", zero=True),
        default=0.0,
        help="hold out this stratified share of rows as a test set, scored "
        "in the report (default 0: train on every row)",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument(
        "--checkpoint-every",
        type=count_type("--checkpoint-every"),
        default=25,
        help="steps between resumable checkpoints in run_dir/checkpoint",
    )


def augment_names() -> tuple[str, ...]:
    """The ``--augment`` choices (cheap: no generator module is imported)."""
    from finetune._augment import augment_names as names

    return names()


def option_type(text: str) -> tuple[str, Any]:
    """An argparse type: ``key=value`` -> (key, value), the value JSON or a string.

    Examples:
      >>> option_type("k_neighbors=3"), option_type("kind=fast")
      (('k_neighbors', 3), ('kind', 'fast'))
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise argparse.ArgumentTypeError(
            f"must be key=value with a Python name as key, got {text!r}"
        )
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    return key.strip(), parsed


def run(args: argparse.Namespace) -> int:
    """Reads the table, fine-tunes, saves and reports; returns the exit status."""
    from pathlib import Path

    import bridge
    from finetune._run import finetune_to_folder, holdout, split_target

    check_device(args.device)
    classes = parse_classes(args.synthetic_classes, "--synthetic-classes")
    X, y = split_target(
        bridge.read_table(args.data), args.target, source=Path(args.data).name
    )
    X_test = y_test = None
    if args.test_fraction:
        X, y, X_test, y_test = holdout(X, y, args.test_fraction, seed=args.seed)
    finetune_to_folder(
        X,
        y,
        args.out,
        X_test=X_test,
        y_test=y_test,
        title=Path(args.data).name,
        command=f"causalmixft {' '.join(sys.argv[1:])}",
        augment=args.augment,
        augment_options=dict(args.augment_option) or None,
        synthetic_classes=classes,
        tfm=args.tfm,
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
        checkpoint_every=args.checkpoint_every,
    )
    return 0
