"""`causalmixft report`: a quality report of a synthetic table against the real one.

    causalmixft report real.csv synthetic.csv [--target y] [--holdout h.csv]
        [--model model_dir] [--seed 0] -o report_dir [--overwrite]

Both tables are read by `bridge.read_table`; `finetune.quality.quality_report`
computes the metrics and `finetune.quality.write_report` writes report.md,
report.json, columns.png and pair_trends.png into a folder that appears atomically.
Utility needs real rows the generator never saw: ``--holdout``, or, with
``--target`` and no ``--holdout``, 30% of real.csv split off (stratified, seeded;
the markdown says so and TRTR trains on the other 70%). ``--model`` (a ``fit-scm``
model directory) adds the SCM edge table. Bad input (a file, a column, an output
folder that is not a report) is one error line and exit status 2, nothing written.
"""

from __future__ import annotations

import argparse

from finetune.cli import count_type, seed_type


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers the report flags."""
    parser.add_argument("real", help="the real table: .csv, .csv.gz, .tsv or .parquet")
    parser.add_argument("synthetic", help="the synthetic table, the same columns")
    parser.add_argument("-o", "--output", required=True, help="report folder to create")
    parser.add_argument("--target", default=None, help="target column (categorical)")
    parser.add_argument(
        "--holdout", default=None, help="real rows the generator never saw"
    )
    parser.add_argument(
        "--model", default=None, help="`causalmixft fit-scm` model directory"
    )
    parser.add_argument("--seed", type=seed_type(), default=0)
    parser.add_argument(
        "--folds", type=count_type("--folds", 2), default=3, help="detection folds"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing report folder"
    )


def run(args: argparse.Namespace) -> int:
    """Reads the tables, computes and writes the report; prints the headline."""
    import dataclasses
    from pathlib import Path

    import bridge
    import jaxscm
    from finetune import quality
    from finetune._quality_write import check_output

    out = Path(args.output)
    check_output(out, args.overwrite)  # before any work
    frames = {
        f"{args.real} (real)": bridge.read_table(args.real),
        f"{args.synthetic} (synthetic)": bridge.read_table(args.synthetic),
    }
    if args.holdout is not None:
        frames[f"{args.holdout} (holdout)"] = bridge.read_table(args.holdout)
    quality.check_columns(frames, args.target)
    real, synthetic, *rest = frames.values()
    holdout = rest[0] if rest else None
    model = jaxscm.load_fit(args.model) if args.model is not None else None
    origin = f"{args.holdout}" if holdout is not None else "none"
    if holdout is None and args.target is not None:
        real, holdout = quality.split_holdout(real, args.target, seed=args.seed)
        origin = (
            f"30% of {args.real} split off, stratified by {args.target!r} with seed "
            f"{args.seed}; TRTR, DCR and the shapes use the other 70% "
            f"({len(real)} rows). A generator fitted on all of {args.real} has seen "
            "the held-out rows, which flatters TSTR: pass --holdout with rows it "
            "never saw"
        )
    report = quality.quality_report(
        real,
        synthetic,
        target=args.target,
        holdout=holdout,
        model=model,
        seed=args.seed,
        folds=args.folds,
    )
    report = dataclasses.replace(report, holdout_origin=origin)
    path = quality.write_report(report, out, overwrite=args.overwrite)
    for name, value in report.headline().items():
        print(f"{name:>22}: {'n/a' if value is None else f'{value:.3f}'}")
    print(f"wrote {path}/report.md")
    return 0
