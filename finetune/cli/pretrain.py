"""`causalmixft pretrain`: pre-train a small TabPFN-architecture model on the SCM prior.

Example (the shipped checkpoint's command is in finetune/checkpoints/MODEL_CARD.md)::

    OMP_NUM_THREADS=1 causalmixft pretrain --steps 4000 --out runs/pretrain --resume
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers the pre-training flags (one per `PretrainConfig` field)."""
    # No import of finetune.pretrain here: it loads torch, and building the parser
    # for any subcommand must stay cheap. `PretrainConfig` validates --arch.
    parser.add_argument(
        "--steps", type=int, required=True, help="total optimisation steps"
    )
    parser.add_argument(
        "--out", required=True, help="output directory (state, checkpoint)"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from OUT/state.pt"
    )
    parser.add_argument(
        "--arch", default="v3.5-tiny", help="architecture preset (finetune.pretrain)"
    )
    parser.add_argument("--batch-size", type=int, default=8, help="datasets per step")
    parser.add_argument("--rows", type=int, default=384, help="most rows per dataset")
    parser.add_argument("--min-rows", type=int, default=64, help="fewest rows per step")
    parser.add_argument(
        "--prior",
        choices=["v1", "v2"],
        default="v1",
        help="v1: the tiny checkpoint's prior (<= 16 features); v2: jaxscm.prior."
        "PRIOR_V2 (<= 100 features, 20-level and ordinal categoricals, imbalance)",
    )
    parser.add_argument(
        "--max-features", type=int, default=None, help="default: 16 (v1), 100 (v2)"
    )
    parser.add_argument(
        "--step-features",
        choices=["max", "log"],
        default="max",
        help="columns per step: the widest dataset's, or a log-uniform cap",
    )
    parser.add_argument(
        "--init-from", default=None, help="TabPFN checkpoint to initialise from"
    )
    parser.add_argument(
        "--max-features-per-estimator",
        type=int,
        default=None,
        help="written into the exported inference config (tabpfn default 500)",
    )
    parser.add_argument("--max-classes", type=int, default=10)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--save-every", type=int, default=200, help="steps between saves"
    )
    parser.add_argument(
        "--time-limit", type=float, default=None, help="stop after S seconds"
    )
    parser.add_argument(
        "--export", default=None, help="also write the TabPFN checkpoint here"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Runs (or resumes) pre-training and prints the summary as JSON."""
    import json

    from finetune.pretrain import PretrainConfig, pretrain, pretrain_prior

    prior = pretrain_prior(args.rows, args.max_features, args.max_classes, args.prior)
    config = PretrainConfig(
        steps=args.steps,
        arch=args.arch,
        batch_size=args.batch_size,
        min_rows=args.min_rows,
        lr=args.lr,
        warmup=args.warmup,
        seed=args.seed,
        save_every=args.save_every,
        prior=prior,
        step_features=args.step_features,
        init_from=args.init_from,
        max_features_per_estimator=args.max_features_per_estimator,
    )
    summary = pretrain(
        config,
        args.out,
        resume=args.resume,
        time_limit=args.time_limit,
        export=args.export,
        progress=not args.no_progress,
    )
    print(json.dumps(summary, indent=2))
    return 0
