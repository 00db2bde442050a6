"""`causalmixft fit-scm`: fit an SCM ensemble to a CSV/Parquet table, save a model dir.

    causalmixft fit-scm data.csv --target y -o model_dir [--n-dags 8] [--seed 0]

The table is read by `bridge.read_table`; flags map one-to-one onto `jaxscm.fit_scm`;
`jaxscm.save_fit` writes the model directory: model.npz (the ensemble) and fit.json
(schema, edge probabilities, graphs, timings), which is what `causalmixft sample`
reads. Bad input (file, column, kind) is one error line and exit status 2.
"""

from __future__ import annotations

import argparse
from typing import Any

from finetune.cli import count_type, positive_type, probability_type, seed_type


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers the fit-scm flags."""
    parser.add_argument("data", help="input table: .csv, .csv.gz, .tsv or .parquet")
    parser.add_argument("--target", required=True, help="target column (categorical)")
    parser.add_argument(
        "-o", "--output", required=True, help="model directory to create"
    )
    parser.add_argument(
        "--n-dags",
        type=count_type("--n-dags"),
        default=8,
        help="graphs in the ensemble",
    )
    parser.add_argument("--seed", type=seed_type(), default=0)
    parser.add_argument("--method", choices=("pc", "fci", "both"), default="pc")
    parser.add_argument(
        "--n-bootstrap",
        type=count_type("--n-bootstrap"),
        default=20,
        help="discovery resamples",
    )
    parser.add_argument(
        "--alpha",
        type=probability_type("--alpha"),
        default=0.05,
        help="test significance level",
    )
    parser.add_argument(
        "--max-depth",
        type=count_type("--max-depth", -1),
        default=3,
        help="largest conditioning set in discovery (-1: no cap)",
    )
    parser.add_argument(
        "--time-limit",
        type=positive_type("--time-limit"),
        default=None,
        help="seconds after which discovery starts no new resample",
    )
    parser.add_argument(
        "--mechanisms",
        choices=("fast", "linear", "hgb", "auto"),
        default="fast",
        help="how node predictors are chosen",
    )
    for fix, what in (
        ("snap", "snapping grid / few-valued columns and rounding integer ones"),
        ("clip", "clipping bounded columns to their observed range"),
        ("point-mass", "the gated point mass of a frequent value (e.g. zeros)"),
        ("transform", "the quantile-normal transform of skewed columns"),
    ):
        parser.add_argument(
            f"--no-{fix}",
            action="store_true",
            help=f"turn off {what} (numeric nodes; off with --mechanisms auto)",
        )
    parser.add_argument(
        "--free-target",
        action="store_true",
        help="let the target have children (default: it is a sink)",
    )
    parser.add_argument(
        "--target-parents",
        choices=("all", "threshold", "discovered"),
        default="all",
        help="the target's parents in every graph: all its non-descendants "
        "(default), those with adjacency probability >= 0.05, or only the "
        "discovered ones",
    )
    parser.add_argument(
        "--no-class-share",
        action="store_true",
        help="do not calibrate the synthetic class share to the training share",
    )
    for kind in ("categorical", "integer", "numeric"):
        parser.add_argument(
            f"--{kind}",
            action="append",
            default=[],
            metavar="COLUMN",
            help=f"treat COLUMN as {kind} (repeatable)",
        )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing model directory"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Reads the table, fits and saves the ensemble; prints a summary."""
    from pathlib import Path

    import bridge
    import jaxscm
    from finetune._report import fit_summary

    kinds: dict[str, str] = {}
    for k in ("categorical", "integer", "numeric"):
        for c in getattr(args, k):
            if kinds.get(c, k) != k:
                raise ValueError(
                    f"column {c!r} is given two kinds (--{kinds[c]} and --{k}); "
                    "give it one"
                )
            kinds[c] = k
    _check_output(Path(args.output), args.overwrite)  # before minutes of fitting
    df = bridge.read_table(args.data)
    discovery = jaxscm.DiscoveryOptions(
        method=args.method,
        n_bootstrap=args.n_bootstrap,
        alpha=args.alpha,
        max_depth=None if args.max_depth < 0 else args.max_depth,
        time_limit=args.time_limit,
        target_sink=not args.free_target,
    )
    model = jaxscm.fit_scm(
        df,
        args.target,
        n_dags=args.n_dags,
        seed=args.seed,
        kinds=kinds,
        discovery=discovery,
        mechanisms=args.mechanisms,
        progress=not args.quiet,
        marginals=jaxscm.MarginalOptions.off()
        if args.mechanisms == "auto"
        else jaxscm.MarginalOptions(
            snap=not args.no_snap,
            clip=not args.no_clip,
            point_mass=not args.no_point_mass,
            transform=not args.no_transform,
        ),
        label=jaxscm.LabelOptions(
            parents=args.target_parents, class_share=not args.no_class_share
        ),
    )
    out = jaxscm.save_fit(args.output, model, overwrite=args.overwrite)
    info = model.info
    print(fit_summary(info, args.target, out))
    return 0


def _check_output(path: Any, overwrite: bool) -> None:
    """Refuses an output `jaxscm.save_fit` would refuse, before the fit starts."""
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return
    if not overwrite:
        raise FileExistsError(
            f"{path} already exists; choose another output or pass --overwrite"
        )
    if not (path / "fit.json").is_file():
        raise FileExistsError(
            f"{path} exists and is not a model directory; not replacing it (choose "
            "another output)"
        )
