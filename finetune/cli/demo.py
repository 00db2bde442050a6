"""`causalmixft demo`: the main job, offline, on the embedded defaults.

On a credit dataset with 128 labelled training rows: the zero-shot TFM (the shipped
checkpoint, in context on the 128 rows), plain fine-tuning, and CausalMixFT (fit an
SCM ensemble to the training rows, then fine-tune on real + fresh synthetic rows),
each scored by ROC-AUC on the held-out test rows (`finetune._demo.run_demo`). Both
fine-tuning runs hold out a quarter of the 128 rows for early stopping and put them
back into the inference context afterwards, so every method sees the same 128
labelled rows and nothing else. Writes the training curves and a results table to
the output folder.
"""

from __future__ import annotations

import argparse

from finetune.cli import count_type, seed_type


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers the demo's flags."""
    parser.add_argument(
        "--dataset", default="credit-g", help="a vendored dataset (benchmarks.datasets)"
    )
    parser.add_argument("--n-train", type=int, default=128, help="labelled rows")
    parser.add_argument(
        "--seed", type=seed_type(), default=0, help="first split/run seed"
    )
    parser.add_argument(
        "--seeds", type=count_type("--seeds"), default=1, help="number of splits"
    )
    parser.add_argument("--max-steps", type=int, default=80)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--ratio", type=float, default=1.0)
    parser.add_argument("--n-dags", type=int, default=8)
    parser.add_argument("--tfm", default=None, help="TFM checkpoint (default: shipped)")
    parser.add_argument("-o", "--out", default="runs/demo", help="output folder")


def run(args: argparse.Namespace) -> int:
    """Runs the three-way comparison on each split and prints the table."""
    # The declared exception: `demo` reads the vendored datasets of `benchmarks`,
    # lazily here, so no other finetune module imports benchmarks.
    from benchmarks.datasets import make_split
    from finetune._demo import run_demo

    seeds = [args.seed + i for i in range(args.seeds)]
    run_demo(
        ((s, make_split(args.dataset, args.n_train, seed=s)) for s in seeds),
        args.out,
        dataset=args.dataset,
        tfm=args.tfm,
        max_steps=args.max_steps,
        lr=args.lr,
        ratio=args.ratio,
        n_dags=args.n_dags,
    )
    return 0
