"""`causalmixft sample`: draw rows from a fitted model directory to CSV or Parquet.

    causalmixft sample model_dir -n 10000 -o out.csv|out.parquet [--seed 0]

`jaxscm.load_fit` reads the model directory and `bridge.write_samples` writes the
rows: they mix the ensemble's graphs evenly (within each chunk, row r comes from
graph r mod k), or come from one graph with ``--member``. Categories are decoded back
to their labels. The file appears atomically (`jaxscm.atomic_write`).
"""

from __future__ import annotations

import argparse

from finetune.cli import count_type, seed_type


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers the sample flags."""
    parser.add_argument("model_dir", help="directory written by `causalmixft fit-scm`")
    parser.add_argument(
        "-n", "--rows", type=count_type("--rows"), required=True, help="rows to write"
    )
    parser.add_argument("-o", "--output", required=True, help="out.csv or out.parquet")
    parser.add_argument("--seed", type=seed_type(), default=0)
    parser.add_argument(
        "--member",
        type=count_type("--member", 0),
        default=None,
        help="sample only this graph of the ensemble (0-based)",
    )
    parser.add_argument(
        "--chunk", type=count_type("--chunk"), default=100_000, help="rows per chunk"
    )


def run(args: argparse.Namespace) -> int:
    """Samples and writes the file."""
    import jax

    import bridge
    import jaxscm

    # The output is checked before the model is loaded: a typo costs nothing.
    bridge.table_format(args.output, write=True)
    model = jaxscm.load_fit(args.model_dir)
    out = bridge.write_samples(
        args.output,
        jax.random.key(args.seed),
        model,
        args.rows,
        member=args.member,
        chunk=args.chunk,
    )
    print(f"wrote {args.rows} rows x {len(model.columns)} columns to {out}")
    return 0
