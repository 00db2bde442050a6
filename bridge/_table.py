"""Tables on disk: a user's CSV/TSV/Parquet file in, sampled rows out.

`read_table` is how every command reads a user's table (not the benchmark dataset
loader, which checks vendored files against a manifest). `write_samples` draws rows
from a fitted SCM or ensemble and writes them, decoded to the table's labels, chunk by
chunk into one CSV or Parquet file that appears atomically.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

from bridge._classes import ClassPlan, plan_classes
from bridge._frame import to_frame
from bridge._stream import first_bad_column, raise_if_not_finite
from jaxscm import atomic_write, sample
from jaxscm import do as jaxscm_do
from jaxscm._sample import sampler_input

_READ_SUFFIXES = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".tsv.gz": "tsv",
    ".parquet": "parquet",
}
_WRITE_FORMATS = ("csv", "parquet")


def table_format(path: str | os.PathLike[str], *, write: bool = False) -> str:
    """The format of a table file, from its name: "csv", "tsv" or "parquet".

    Args:
      path: the file.
      write: check it as an output of `write_samples` instead: only .csv or .parquet,
        and its folder must exist.

    Returns:
      "csv", "tsv" or "parquet".

    Raises:
      ValueError: naming the file, for a suffix that is not a table format (or its
        folder is missing, with `write`).

    Examples:
      >>> table_format("data.csv.gz"), table_format("rows.parquet", write=True)
      ('csv', 'parquet')
    """
    p = Path(path)
    name = p.name.lower()
    fmt = next((f for s, f in _READ_SUFFIXES.items() if name.endswith(s)), None)
    if write:
        if fmt not in _WRITE_FORMATS or name.endswith(".gz") or name.endswith(".txt"):
            raise ValueError(f"{path}: output must end in .csv or .parquet")
        if not p.parent.is_dir():
            raise ValueError(
                f"directory {str(p.parent)!r} for {p.name!r} does not exist; "
                "create it first"
            )
        return fmt
    if fmt is None:
        raise ValueError(
            f"{path}: unknown table format; use .csv, .csv.gz, .tsv or .parquet"
        )
    return fmt


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Reads a user's CSV, TSV or Parquet table into a typed DataFrame.

    CSV/TSV files need a header row; pandas infers each column's dtype (numbers as
    int64/float64, text as the string dtype, empty cells as missing). Parquet columns
    keep their stored types. Every number must be finite and fit float32 (the SCM
    and the TFM compute in float32); a missing cell is fine.

    Args:
      path: a .csv, .csv.gz, .txt (comma-separated), .tsv, .tsv.gz or .parquet file.

    Returns:
      The table, at least one row and one column.

    Raises:
      FileNotFoundError: no such file (or it is a folder).
      ValueError: naming the file: an unknown suffix, an empty or binary file, a
        file with a header but no rows, one that cannot be parsed as its format, a
        header with a duplicate or empty column name, rows longer than the header,
        or a number cell holding inf, -inf or a value beyond float32's range
        (about 3.4e38), naming the column and the line (`check_finite`).

    Examples:
      >>> import pathlib, tempfile
      >>> path = pathlib.Path(tempfile.mkdtemp(), "t.csv")
      >>> _ = path.write_text("x,city\\n1.5,oslo\\n2.0,rome\\n")
      >>> df = read_table(path)
      >>> df.shape, str(df["x"].dtype)
      ((2, 2), 'float64')
    """
    p = Path(path)
    if not p.exists() and not Path(p.name).suffix:
        raise FileNotFoundError(
            f"{path}: no such file; give the path of a .csv, .csv.gz, .tsv or "
            ".parquet table (the vendored benchmark datasets are for `causalmixft "
            "demo --dataset NAME`)"
        )
    fmt = table_format(p)
    if not p.is_file():
        what = "a folder, not a file" if p.is_dir() else "no such file"
        raise FileNotFoundError(f"{path}: {what}; give the path of a table file")
    if p.stat().st_size == 0:
        raise ValueError(f"{path} is empty; a table needs a header row and data rows")
    if fmt != "parquet":
        _check_text(p, fmt)
    try:
        if fmt == "parquet":
            df = pd.read_parquet(p)
        else:
            sep = "\t" if fmt == "tsv" else ","
            header = pd.read_csv(p, sep=sep, header=None, nrows=1, dtype=str)
            df = pd.read_csv(p, sep=sep)
    except pd.errors.EmptyDataError as err:
        raise ValueError(
            f"{path} holds no table (only blank lines); it needs a header row and "
            "data rows"
        ) from err
    except (ValueError, OSError, EOFError, UnicodeDecodeError) as err:
        # pandas' ParserError and pyarrow's ArrowInvalid are ValueErrors.
        raise ValueError(f"cannot read {path} as {fmt.upper()}: {err}") from err
    names = (
        [str(c) for c in df.columns]
        if fmt == "parquet"
        else ["" if pd.isna(v) else str(v) for v in header.iloc[0].tolist()]
    )
    _check_header(path, names)
    if not df.index.equals(pd.RangeIndex(len(df))):
        raise ValueError(
            f"{path}: some rows have more fields than the header "
            f"({len(names)} names); fix the header or the rows (an unquoted "
            "separator inside a cell?)"
        )
    if df.shape[1] == 0 or len(df) == 0:
        raise ValueError(
            f"{path} has a header but no data rows (shape {df.shape}); "
            "a table needs at least one row"
        )
    check_finite(df, f"{path}", first_line=2 if fmt != "parquet" else None)
    return df


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_finite(
    df: pd.DataFrame, source: str = "the table", *, first_line: int | None = None
) -> None:
    """Refuses number cells that are infinite or beyond float32's range.

    Missing cells (NaN) pass: they are imputed or handed to the TFM as missing.

    Args:
      df: the table.
      source: what to call it in the error (a file name).
      first_line: the file line of the first data row (2 for a CSV with a header),
        to name the line in the error; None names the 0-based row position.

    Raises:
      ValueError: naming `source`, the column, the row and the value.

    Examples:
      >>> check_finite(pd.DataFrame({"a": [1.0, float("nan")]}))
      >>> try:
      ...     check_finite(pd.DataFrame({"a": [1.0, 1e39]}))
      ... except ValueError as e:
      ...     print(str(e)[:48])
      the table: column 'a' holds 1e+39 in row 1, beyo
    """
    for j in range(df.shape[1]):
        s = df.iloc[:, j]
        if pd.api.types.is_bool_dtype(s.dtype) or not pd.api.types.is_numeric_dtype(
            s.dtype
        ):
            continue
        if pd.api.types.is_complex_dtype(s.dtype):
            continue  # refused, naming the column, by the schema check
        v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.abs(v) > _FLOAT32_MAX  # inf too; NaN compares False
        if not bad.any():
            continue
        i = int(np.flatnonzero(bad)[0])
        where = f"row {i}" if first_line is None else f"line {i + first_line}"
        value = v[i]
        fix = (
            "replace it by a number, or leave the cell empty for a missing value"
            if np.isinf(value)
            else "fix or rescale the column (e.g. divide it by a power of ten)"
        )
        what = (
            "infinite" if np.isinf(value) else "beyond float32's range (about 3.4e38)"
        )
        raise ValueError(
            f"{source}: column {str(df.columns[j])!r} holds {value:g} in {where}, "
            f"{what}; {fix}"
            + (f" ({int(bad.sum())} such cells)" if bad.sum() > 1 else "")
        )


def _check_text(p: Path, fmt: str) -> None:
    """Refuses a binary file, or a .gz name on a plain file, naming the file."""
    import gzip

    with open(p, "rb") as f:
        head = f.read(8192)
    gz = p.name.lower().endswith(".gz")
    if gz and not head.startswith(b"\x1f\x8b"):
        raise ValueError(
            f"{p} is named .gz but is not gzip-compressed; rename it to "
            f"{p.name[:-3]!r} or compress it with gzip"
        )
    if gz:
        try:
            with gzip.open(p, "rb") as f:
                head = f.read(8192)
        except (OSError, EOFError) as err:
            raise ValueError(f"{p} is a damaged gzip file: {err}") from err
    if b"\x00" in head:
        raise ValueError(
            f"cannot read {p} as {fmt.upper()}: it holds NUL bytes, so it is binary, "
            "not a text table; give a text table or a .parquet file"
        )


def _check_header(path: Any, names: list[str]) -> None:
    """Refuses duplicate and empty column names (pandas would rename them)."""
    seen: set[str] = set()
    for j, name in enumerate(names):
        if not name.strip():
            raise ValueError(
                f"{path}: column {j + 1} of the header has no name; name it, or drop "
                "it if it is a saved row index"
            )
        if name in seen:
            raise ValueError(
                f"{path}: column {name!r} appears more than once in the header; "
                "rename or drop the duplicates"
            )
        seen.add(name)


def _checked_sample(key: jax.Array, model: Any, n: int) -> tuple[jax.Array, Any]:
    x = sample(key, model, n)
    return x, first_bad_column(x)


# Module level, so every writer (a file, each shard of a dataset, each Ray task in a
# worker process) reuses one compile per model structure and chunk size.
_draw = jax.jit(_checked_sample, static_argnums=2)


def write_blocks(
    f: Any,
    fmt: str,
    key: jax.Array,
    model: Any,
    n: int,
    chunk: int,
    blocks: range,
    member: int | None,
    where: Any,
    *,
    dictionary_numbers: bool = True,
    classes: ClassPlan | None = None,
) -> int:
    """Writes blocks `blocks` of the `write_samples` rows to the open file `f`.

    Block `i` is rows [i * chunk, min((i + 1) * chunk, n)): the first rows of
    `sample(fold_in(key, i), model, per)` (an ensemble's members interleaved, row r
    from member r mod k, or member `member` alone), decoded to the table's labels.
    So a row depends only on (model, key, chunk, its global index), whichever range
    of blocks a call writes. `member` must already be checked (None for a single
    SCM). With `classes` (a `ClassPlan`, no member) block `i` is
    `classes.rows(key, model, i)` instead: rows of the asked classes. Returns the
    rows written.

    `dictionary_numbers=False` dictionary-encodes only the categorical columns in
    Parquet: continuous floats almost never repeat, so pyarrow's default (try a
    dictionary for every column) costs most of the write time and makes a bigger
    file (30 float32 columns: 0.42 s vs 0.044 s per 1e5 rows, 18.1 vs 12.0 MB).
    The values read back are the same either way; `write_samples` keeps the default
    so its files stay byte for byte what they were.
    """
    k = getattr(model, "n_members", None)
    names = [c.name for c in model.columns]
    per = chunk if k is None or member is not None else -(-chunk // k)

    planned = sampler_input(model)  # an ensemble's plan, stacked once on the host

    def dispatch(i: int) -> tuple[Any, Any]:
        if classes is not None:
            return classes.rows(key, model, i)
        return _draw(jax.random.fold_in(key, i), planned, per)

    writer = None
    written = 0
    pending = dispatch(blocks[0]) if blocks else None
    try:
        for i in blocks:
            start = i * chunk
            x, bad = pending
            if i + 1 < blocks.stop:
                # dispatched now, computed while this block is decoded and written
                pending = dispatch(i + 1)
            raise_if_not_finite(bad, names, str(where))
            x = np.asarray(x)
            if k is not None and classes is None:
                # (k, per, d) -> rows interleaving members: row r from r mod k.
                x = (
                    x[member]
                    if member is not None
                    else x.transpose(1, 0, 2).reshape(-1, x.shape[-1])
                )
            frame = to_frame(x[: min(chunk, n - start)], model.columns)
            written += len(frame)
            if fmt == "csv":
                frame.to_csv(f, header=i == blocks.start, index=False)
                continue
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                kw = {}
                if not dictionary_numbers:
                    kw["use_dictionary"] = [
                        fd.name
                        for fd in table.schema
                        if pa.types.is_dictionary(fd.type)
                    ]
                writer = pq.ParquetWriter(f, table.schema, **kw)
            writer.write_table(table.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()
    return written


def checked_member(model: Any, n: int, chunk: int, member: int | None) -> int | None:
    """Checks a writer's row count, chunk and member; a single SCM's member 0 is
    None (an SCM is its own only member)."""
    if n < 1 or chunk < 1:
        raise ValueError(f"the row count ({n}) and chunk ({chunk}) must be >= 1")
    k = getattr(model, "n_members", None)
    if member is not None and not 0 <= member < (k or 1):
        raise ValueError(
            f"member must be in [0, {k or 1}), the model has {k or 1} graphs"
        )
    return None if k is None and member == 0 else member


def write_samples(
    path: str | os.PathLike[str],
    key: jax.Array,
    model: Any,
    n: int,
    *,
    member: int | None = None,
    chunk: int = 100_000,
    do: Mapping[str, Any] | None = None,
    classes: Any = None,
) -> Path:
    """Samples `n` rows into a CSV or Parquet file, decoded to the table's labels.

    Rows of an ensemble mix its graphs evenly (within each chunk, row r comes from
    graph r mod k), or come from one graph with `member`. Chunk `i` draws with
    `fold_in(key, i)`, so the file depends on `chunk`. Memory stays bounded by one
    chunk; the file appears atomically (`jaxscm.atomic_write`).

    `do` samples the intervened model `jaxscm.do(model, do)`; `classes` asks for
    rows of given classes of the model's categorical target, drawn by rejection
    inside the compiled sampler (`bridge._classes`: each chunk asks the request's
    class counts, shuffled by the chunk's index).

    Args:
      path: a .csv or .parquet file in an existing folder.
      key: PRNG key.
      model: a fitted `jaxscm.SCM` or `jaxscm.Ensemble` with columns.
      n: rows to write, >= 1.
      member: sample only this graph of an ensemble (0-based).
      chunk: rows per chunk (and Parquet row group), >= 1.
      do: node name -> value held (a category label for a categorical node).
      classes: "balanced" or a mapping label -> share of the target's classes.

    Returns:
      The path written.

    Raises:
      ValueError: naming the argument: a wrong suffix or missing folder, `n` or
        `chunk` < 1, `member` outside the ensemble, a bad intervention or class
        request.
      NonFiniteSampleError: (a ValueError) a sampled value is NaN or infinite,
        naming the column; nothing is written.

    Examples:
      >>> import jax, os, tempfile
      >>> from jaxscm import random_scm
      >>> path = os.path.join(tempfile.mkdtemp(), "s.csv")
      >>> scm = random_scm(jax.random.key(1), 3)
      >>> _ = write_samples(path, jax.random.key(0), scm, 5)
      >>> len(read_table(path))
      5
    """
    path = Path(path)
    fmt = table_format(path, write=True)
    member = checked_member(model, n, chunk, member)
    chunk = min(chunk, n)
    model, plan = generation(key, model, chunk, member, do, classes)
    mode, kw = ("w", {"newline": ""}) if fmt == "csv" else ("wb", {})
    with atomic_write(path, mode, **kw) as f:
        write_blocks(
            f,
            fmt,
            key,
            model,
            n,
            chunk,
            range(-(-n // chunk)),
            member,
            path,
            classes=plan,
        )
    return path


def generation(
    key: jax.Array,
    model: Any,
    chunk: int,
    member: int | None,
    do: Mapping[str, Any] | None,
    classes: Any,
) -> tuple[Any, ClassPlan | None]:
    """The model a writer samples (intervened by `do`) and its class plan (or None).

    Raises:
      ValueError: a class request with `member` or with the target intervened on,
        a bad intervention (`jaxscm.do`) or a bad request (`plan_classes`).
    """
    if do:
        names = [c.name for c in model.columns]
        for name in do:
            if name not in names:
                raise ValueError(
                    f"cannot intervene on {name!r}: the model has no such column; "
                    f"columns are {names}"
                )
        model = jaxscm_do(model, dict(do))
    if classes is None:
        return model, None
    if member is not None:
        raise ValueError(
            "a class request draws from the whole ensemble; drop the member "
            "(--member) or the class request (--classes)"
        )
    target = [c.name for c in model.columns if c.is_target]
    if do and target and target[0] in do:
        raise ValueError(
            f"the target {target[0]!r} is held by an intervention, so its classes "
            "cannot be asked for; drop one of the two (--do or --classes)"
        )
    return model, plan_classes(key, model, classes, chunk)
