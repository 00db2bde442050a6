"""`causalmixft sample`: draw rows from a fitted model directory to CSV or Parquet.

    causalmixft sample model_dir -n 10000 -o out.csv|out.parquet [--seed 0]

Rows mix the ensemble's graphs evenly (within each chunk, row r comes from graph
r mod k), or come from one graph with ``--member``. Categories are
decoded back to their labels. The file appears atomically (temporary file + rename).
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers the sample flags."""
    parser.add_argument("model_dir", help="directory written by `causalmixft fit-scm`")
    parser.add_argument("-n", "--rows", type=int, required=True, help="rows to write")
    parser.add_argument("-o", "--output", required=True, help="out.csv or out.parquet")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--member",
        type=int,
        default=None,
        help="sample only this graph of the ensemble (0-based)",
    )
    parser.add_argument("--chunk", type=int, default=100_000, help="rows per chunk")


def run(args: argparse.Namespace) -> int:
    """Samples and writes the file."""
    from pathlib import Path

    import jaxscm

    out = Path(args.output)
    fmt = out.suffix.lower()
    try:
        if fmt not in (".csv", ".parquet"):
            raise ValueError(f"{out}: output must end in .csv or .parquet")
        if args.rows < 1 or args.chunk < 1:
            raise ValueError("-n and --chunk must be >= 1")
        if not out.parent.is_dir():
            raise ValueError(f"directory {str(out.parent)!r} does not exist")
        model = jaxscm.load_fit(args.model_dir)
        k = getattr(model, "n_members", 1)
        if args.member is not None and not 0 <= args.member < k:
            raise ValueError(
                f"--member must be in [0, {k}), the ensemble has {k} graphs"
            )
        write_samples(
            out, model, args.rows, seed=args.seed, member=args.member, chunk=args.chunk
        )
    except (FileNotFoundError, ValueError) as err:
        print(f"causalmixft sample: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.rows} rows x {len(model.columns)} columns to {out}")
    return 0


def write_samples(path, model, n: int, *, seed: int, member: int | None, chunk: int):  # noqa: ANN001, ANN201
    """Samples `n` decoded rows, chunk by chunk, into a CSV/Parquet file atomically."""
    import os

    import jax
    import numpy as np

    import jaxscm
    from bridge import to_frame

    sample = jax.jit(jaxscm.sample, static_argnums=2)
    key = jax.random.key(seed)
    k = getattr(model, "n_members", None)
    chunk = min(chunk, n)
    per = chunk if k is None or member is not None else -(-chunk // k)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    writer = None
    try:
        for i, start in enumerate(range(0, n, chunk)):
            x = np.asarray(sample(jax.random.fold_in(key, i), model, per))
            if k is not None:
                # (k, per, d) -> rows interleaving members: row r from member r mod k.
                x = (
                    x[member]
                    if member is not None
                    else x.transpose(1, 0, 2).reshape(-1, x.shape[-1])
                )
            frame = to_frame(x[: min(chunk, n - start)], model.columns)
            if path.suffix.lower() == ".csv":
                frame.to_csv(
                    tmp, mode="w" if i == 0 else "a", header=i == 0, index=False
                )
            else:
                import pyarrow as pa
                import pyarrow.parquet as pq

                table = pa.Table.from_pandas(frame, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table.cast(writer.schema))
        if writer is not None:
            writer.close()
            writer = None
        os.replace(tmp, path)
    except BaseException:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return path
