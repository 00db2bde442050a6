"""`causalmixft augment`: fit a generator to a table and write new rows of it.

    causalmixft augment data.csv --target y --generator smote -n 500 -o out.csv
        [--seed 0] [--classes balanced|label=share,...]

The table is read with `bridge.read_table`; the generator (`finetune.augmenters`,
any of `names()`) learns it through the project's one schema and draws `-n` rows
with the table's columns, in its column order, target included. ``--classes`` asks
for rows of given classes: ``balanced`` (equal shares) or shares such as
``yes=0.7,no=0.3``; how each generator honours that is its `conditional` attribute
(conditional model or rejection). Only the new rows are written, atomically
(`jaxscm.atomic_write`): a bad file, column or class exits with status 2 and leaves
no file.
"""

from __future__ import annotations

import argparse

from finetune.cli import count_type, parse_classes, seed_type


def _names() -> tuple[str, ...]:
    from finetune.augmenters import names

    return names()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers the augment flags."""
    parser.add_argument("data", help="the table: .csv, .tsv or .parquet")
    parser.add_argument("--target", required=True, help="target column (the classes)")
    parser.add_argument(
        "--generator", required=True, choices=_names(), help="the generator"
    )
    parser.add_argument(
        "-n", "--rows", type=count_type("--rows"), required=True, help="rows to write"
    )
    parser.add_argument("-o", "--output", required=True, help="out.csv or out.parquet")
    parser.add_argument("--seed", type=seed_type(), default=0)
    parser.add_argument(
        "--classes",
        default=None,
        help="'balanced' or label=share,... (default: the generator's own mix)",
    )


def run(args: argparse.Namespace) -> int:
    """Fits the generator, samples and writes the file."""
    import bridge
    from finetune._run import split_target
    from finetune.augmenters import make
    from jaxscm import atomic_write

    # Cheap checks first: a typo in a flag costs no fitting.
    fmt = bridge.table_format(args.output, write=True)
    classes = parse_classes(args.classes)
    table = bridge.read_table(args.data)
    X, y = split_target(table, args.target, source=str(args.data))
    gen = make(args.generator).fit(X, y, seed=args.seed)
    Xs, ys = gen.sample(args.rows, seed=args.seed, y=classes)
    out = Xs.assign(**{args.target: ys})[list(table.columns)]
    mode, kw = ("w", {"newline": ""}) if fmt == "csv" else ("wb", {})
    with atomic_write(args.output, mode, **kw) as f:
        if fmt == "csv":
            out.to_csv(f, index=False)
        else:
            out.to_parquet(f, index=False)
    shares = ys.value_counts().to_dict()
    print(
        f"wrote {args.rows} rows x {out.shape[1]} columns from {args.generator} to "
        f"{args.output} (classes {shares})"
    )
    return 0
