"""`causalmixft fit-scm`: fit an SCM ensemble to a CSV/Parquet table, save a model dir.

    causalmixft fit-scm data.csv --target y -o model_dir [--n-dags 8] [--seed 0]

Flags map one-to-one onto `jaxscm.fit_scm`; the model directory holds model.npz (the
ensemble) and fit.json (schema, edge probabilities, graphs, timings), and is what
`causalmixft sample` reads.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers the fit-scm flags."""
    parser.add_argument("data", help="input table: .csv, .csv.gz, .tsv or .parquet")
    parser.add_argument("--target", required=True, help="target column (categorical)")
    parser.add_argument(
        "-o", "--output", required=True, help="model directory to create"
    )
    parser.add_argument("--n-dags", type=int, default=8, help="graphs in the ensemble")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--method", choices=("pc", "fci", "both"), default="pc")
    parser.add_argument(
        "--n-bootstrap", type=int, default=20, help="discovery resamples"
    )
    parser.add_argument(
        "--alpha", type=float, default=0.05, help="test significance level"
    )
    parser.add_argument(
        "--max-depth",
        type=int,
        default=3,
        help="largest conditioning set in discovery (-1: no cap)",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=None,
        help="seconds after which discovery starts no new resample",
    )
    parser.add_argument(
        "--mechanisms",
        choices=("fast", "linear", "hgb", "auto"),
        default="fast",
        help="how node predictors are chosen",
    )
    parser.add_argument(
        "--free-target",
        action="store_true",
        help="let the target have children (default: it is a sink)",
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


def read_table(path: str):  # noqa: ANN201 - pandas is imported lazily
    """Reads a CSV/TSV/Parquet table, raising FileNotFoundError/ValueError clearly."""
    from pathlib import Path

    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    name = p.name.lower()
    if name.endswith(".parquet"):
        return pd.read_parquet(p)
    if name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt")):
        return pd.read_csv(p, sep="\t" if ".tsv" in name else ",")
    raise ValueError(
        f"{path}: unknown table format; use .csv, .csv.gz, .tsv or .parquet"
    )


def run(args: argparse.Namespace) -> int:
    """Fits and saves the ensemble; prints a summary and the next command."""
    import numpy as np

    import jaxscm
    from jaxscm import SchemaError

    kinds = {
        c: k for k in ("categorical", "integer", "numeric") for c in getattr(args, k)
    }
    try:
        df = read_table(args.data)
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
        )
        info = model.info
        out = jaxscm.save_fit(args.output, model, overwrite=args.overwrite)
    except (SchemaError, FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"causalmixft fit-scm: error: {err}", file=sys.stderr)
        return 2
    kinds_count = {
        k: sum(c.kind == k for c in info.columns)
        for k in ("numeric", "integer", "categorical")
    }
    edges = info.dags.sum(axis=(1, 2))
    t = info.timings
    print(
        f"fitted {len(info.dags)} SCMs on {info.n_rows} rows x "
        f"{len(info.columns)} columns "
        f"({', '.join(f'{v} {k}' for k, v in kinds_count.items() if v)}; "
        f"target {args.target!r})"
    )
    print(
        f"edges per graph: {int(edges.min())}-{int(edges.max())} "
        f"(mean {float(np.mean(edges)):.1f}); imputed columns: "
        f"{sum(r > 0 for r in info.missing_rate.values())}; "
        f"rows dropped for a missing target: {info.dropped_rows}"
    )
    print(
        f"time: discover {t['discover']:.1f} s, DoWhy fit {t['fit']:.1f} s, "
        f"distill {t['distill']:.1f} s, graph sampling + stacking "
        f"{t['sample_dags'] + t['stack']:.1f} s, total {t['total']:.1f} s"
    )
    print(f"saved {out}")
    print(f"next: causalmixft sample {out} -n 10000 -o synthetic.csv")
    return 0
