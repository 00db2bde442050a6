"""Streaming samples to Parquet with bounded memory."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bridge._frame import _codes, columns_of
from bridge._stream import _batch, checked_batch_fn, raise_if_not_finite
from jaxscm import Column, atomic_write
from jaxscm._sample import sampler_input


def arrow_schema(columns: Sequence[Column], float_dtype: Any = np.float32) -> pa.Schema:
    """The Arrow schema `write_parquet` uses.

    Categorical columns are dictionary-encoded strings (int32 codes), integer columns
    int64 and numeric columns `float_dtype` (the samples' float type).

    Examples:
      >>> from jaxscm import Column
      >>> arrow_schema((Column("a"), Column("n", "integer"))).types
      [DataType(float), DataType(int64)]
    """
    fields = []
    for col in columns:
        if col.kind == "categorical":
            t = pa.dictionary(pa.int32(), pa.string())
        elif col.kind == "integer":
            t = pa.int64()
        else:
            t = pa.from_numpy_dtype(np.dtype(float_dtype))
        fields.append(pa.field(col.name, t))
    return pa.schema(fields)


def _table(x: np.ndarray, columns: Sequence[Column], schema: pa.Schema) -> pa.Table:
    arrays = []
    for j, col in enumerate(columns):
        v = x[:, j]
        if col.kind == "categorical":
            codes = _codes(v, col).astype(np.int32)
            mask = codes < 0
            arrays.append(
                pa.DictionaryArray.from_arrays(
                    pa.array(codes, mask=mask if mask.any() else None),
                    pa.array(list(col.categories), pa.string()),
                )
            )
        elif col.kind == "integer":
            mask = np.isnan(v)
            arrays.append(
                pa.array(
                    np.where(mask, 0, v).astype(np.int64),
                    mask=mask if mask.any() else None,
                )
            )
        else:
            arrays.append(pa.array(np.ascontiguousarray(v)))
    return pa.Table.from_arrays(arrays, schema=schema)


def write_parquet(
    path: str | os.PathLike[str],
    key: jax.Array,
    model: Any,
    n: int,
    *,
    chunk: int = 1_000_000,
    compression: str | None = "snappy",
) -> Path:
    """Samples `n` rows from an SCM straight into a Parquet file, chunk by chunk.

    Memory stays bounded by a few chunks whatever `n` is: each chunk is sampled,
    converted to one Arrow row group and written before the next is drawn. The
    rows are those of `bridge.stream(key, model, chunk)` concatenated and cut at `n`
    (chunk `i` draws with `fold_in(key, i)`), so the file depends on `chunk`.

    The file appears atomically: rows go to a temporary file in the same directory,
    renamed onto `path` only after the last row group; on any error or
    KeyboardInterrupt the temporary file is removed and `path` is left untouched.

    Args:
      path: target file.
      key: PRNG key.
      model: a single-DAG `jaxscm.SCM` (an ensemble: write one member at a time).
      n: number of rows.
      chunk: rows per chunk and row group.
      compression: a Parquet codec ("snappy", "zstd", ...) or None.

    Returns:
      The path written.

    Raises:
      ValueError: for n < 0, chunk < 1, a model that is not a single-DAG SCM, or a
        missing target directory.
      NonFiniteSampleError: (a ValueError) a sampled value is NaN or infinite
        (naming the column); the target file is left untouched.

    Examples:
      >>> import jax, tempfile, pathlib, pyarrow.parquet as pq
      >>> from jaxscm import random_scm
      >>> d = tempfile.mkdtemp()
      >>> p = write_parquet(pathlib.Path(d) / "x.parquet", jax.random.key(0),
      ...                   random_scm(jax.random.key(1), 3), 10, chunk=4)
      >>> pq.read_metadata(p).num_rows
      10
    """
    if n < 0 or chunk < 1:
        raise ValueError(
            f"write_parquet needs n >= 0 and chunk >= 1, got n={n}, chunk={chunk}"
        )
    if hasattr(model, "n_members"):
        raise ValueError(
            "write_parquet writes one SCM; for an ensemble write each member "
            "(or pass a member SCM)"
        )
    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(
            f"directory {str(path.parent)!r} for {path.name!r} does not exist"
        )
    columns = columns_of(model)
    model = sampler_input(model)  # the ensemble's plan, stacked once on the host
    out = jax.eval_shape(lambda k: _batch(k, 0, model, 1), key)
    schema = arrow_schema(columns, out.dtype)
    with (
        atomic_write(path) as f,
        pq.ParquetWriter(f, schema, compression=compression) as writer,
    ):
        n_chunks = -(-n // chunk)
        # Sample a full chunk every time (one compiled shape) and cut the last.
        pending = checked_batch_fn(key, 0, model, chunk) if n_chunks else None
        names = [c.name for c in columns]
        for i in range(n_chunks):
            current, bad = pending
            if i + 1 < n_chunks:
                # overlaps the write
                pending = checked_batch_fn(key, i + 1, model, chunk)
            raise_if_not_finite(bad, names, str(path))
            rows = min(chunk, n - i * chunk)
            x = np.asarray(current)[:rows]
            del current
            writer.write_table(_table(x, columns, schema), row_group_size=rows)
        if n_chunks == 0:
            writer.write_table(schema.empty_table())
    return path
