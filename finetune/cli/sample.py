"""`causalmixft sample`: draw rows from a fitted model directory to CSV or Parquet.

    causalmixft sample model_dir -n 10000 -o out.csv|out.parquet [--seed 0]
    causalmixft sample model_dir -n 10000000 -o DIR --shards 8 [--ray [--address A]]
    causalmixft sample model_dir -n 10000000 -o DIR --shard-index 3 --num-shards 8
    causalmixft sample model_dir -n 10000 -o out.csv --do age=40 --do job=admin
    causalmixft sample model_dir -n 10000 -o out.csv --classes balanced|yes=0.3,no=0.7

`jaxscm.load_fit` reads the model directory and `bridge.write_samples` writes the
rows: they mix the ensemble's graphs evenly (within each chunk, row r comes from
graph r mod k), or come from one graph with ``--member``. Categories are decoded back
to their labels. The file appears atomically (`jaxscm.atomic_write`).

With ``--shards K`` the output is a folder: `bridge.write_dataset` writes the same rows
as K Parquet parts plus a manifest, all shards here, over Ray (``--ray``), or one
shard per call (``--shard-index``, e.g. from a Slurm array); rerunning the command
resumes it.

``--do col=value`` (repeatable) samples the intervened model (`jaxscm.do`: the
column is held at the value, a category label for a categorical column, and reads
none of its parents). ``--classes`` asks for rows of the target's classes,
"balanced" or label=share pairs, drawn by rejection inside the compiled sampler
(`bridge._classes`: every chunk asks those class counts). Both are recorded in a
dataset's manifest.
"""

from __future__ import annotations

import argparse

from finetune.cli import count_type, parse_classes, parse_do, seed_type


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
    parser.add_argument(
        "--shards",
        "--num-shards",
        dest="shards",
        type=count_type("--shards"),
        default=None,
        help="write a folder of this many Parquet parts plus _manifest.json",
    )
    parser.add_argument(
        "--shard-index",
        type=count_type("--shard-index", 0),
        default=None,
        help="write only this shard (0-based; with --num-shards), e.g. in a job array",
    )
    parser.add_argument(
        "--ray", action="store_true", help="map the shards over a Ray cluster"
    )
    parser.add_argument(
        "--do",
        action="append",
        metavar="COL=VALUE",
        help="hold a column at a value (hard intervention); repeatable",
    )
    parser.add_argument(
        "--classes",
        default=None,
        help="rows of the target's classes: 'balanced' or label=share,...",
    )
    parser.add_argument(
        "--address",
        default=None,
        help="Ray cluster to join (default: start a local one); needs --ray",
    )


def run(args: argparse.Namespace) -> int:
    """Samples and writes the file."""
    import jax

    import bridge
    import jaxscm

    if args.shards is None:
        if args.shard_index is not None or args.ray:
            raise ValueError("--shard-index and --ray need --shards K (--num-shards)")
        if args.address is not None:
            raise ValueError("--address needs --ray")
    elif args.address is not None and not args.ray:
        raise ValueError("--address needs --ray")
    # Cheap checks first: a typo in a flag costs no model loading.
    args.do, args.classes = parse_do(args.do), parse_classes(args.classes)
    if args.shards is not None:
        return _run_sharded(args)
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
        do=args.do,
        classes=args.classes,
    )
    print(f"wrote {args.rows} rows x {len(model.columns)} columns to {out}")
    return 0


def _run_sharded(args: argparse.Namespace) -> int:
    from pathlib import Path

    import jax

    import bridge
    import jaxscm
    from bridge._dataset import file_sha

    model = jaxscm.load_fit(args.model_dir)
    out = bridge.write_dataset(
        args.output,
        jax.random.key(args.seed),
        model,
        args.rows,
        shards=args.shards,
        chunk=args.chunk,
        member=args.member,
        shard_index=args.shard_index,
        model_sha256=file_sha(Path(args.model_dir) / "model.npz"),
        ray=args.ray,
        address=args.address,
        do=args.do,
        classes=args.classes,
    )
    for i, why in sorted(out["written"].items()):
        print(f"shard {i}: {why}")
    if out["kept"]:
        print(f"kept {len(out['kept'])} shard(s) that match their records")
    if out["manifest"] is None:
        print(f"{args.output}: the manifest waits for the other shards")
    else:
        print(
            f"dataset of {args.rows} rows x {len(model.columns)} columns in "
            f"{args.shards} shard(s): {out['manifest']}"
        )
    return 0
