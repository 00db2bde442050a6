"""Tables in, float codes out: column kinds, encoding, missing values.

The fitting front end works on a pandas DataFrame; the core works on float arrays.
This module is the translation between them, and the place where bad tables are
refused with an error that names the column and the fix.

Kind inference rule (`infer_schema`), overridable per column:

* bool, string/object and pandas ``category`` dtypes -> ``categorical``;
* integer-valued numbers (int dtypes, or floats whose non-missing values are all whole)
  with at most `max_int_categories` (10) distinct values -> ``categorical`` (codes such
  as 0/1 flags or small levels); with more distinct values -> ``integer``;
* other floats -> ``numeric``;
* the target is always ``categorical`` (the project targets classification).

Categories are the distinct non-missing values as labels (`jaxscm._schema.label`: "1"
for a whole number, "True"/"False" for booleans) in the one order of
`jaxscm._schema.ordered_labels` (by value for numbers, by string otherwise) - the
order of `np.unique`, which sklearn uses for `classes_`, so code i is the i-th class
on both sides. Encoding and decoding go through the `Column` codec
(`Column.code_of`, `Column.labels_of`). At most `max_categories`
(default `MAX_CATEGORIES` = 50) categories per column; more is an error suggesting to
bin the column, drop it, or raise the cap.

Missing values (`prepare`): rows whose target is missing are dropped; other missing
entries are imputed (median for numeric and integer columns, most frequent label for
categorical) before discovery and fitting, and each column's missing rate is recorded.
Samples of a fitted model are complete: they carry no missing values. Nothing
downstream ever sees a NaN.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxscm._schema import Column, SchemaError, ordered_labels

MAX_CATEGORIES = 50
MAX_INT_CATEGORIES = 10
_KINDS = ("numeric", "integer", "categorical")
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A table ready for discovery and fitting: encoded once, shared by every stage.

    Attributes:
      columns: the schema, in table order.
      codes: (n, d) float64 values with categorical columns as integer codes; missing
        entries imputed.
      missing_rate: per column, the fraction of entries that were missing.
      dropped_rows: rows dropped because their target was missing.
    """

    columns: tuple[Column, ...]
    codes: np.ndarray
    missing_rate: dict[str, float]
    dropped_rows: int

    @functools.cached_property
    def frame(self) -> Any:
        """The DataFrame DoWhy is fitted on (`to_dowhy_frame`), built on first use."""
        return to_dowhy_frame(self.codes, self.columns)


def infer_schema(
    df: Any,
    target: str | None = None,
    *,
    kinds: Mapping[str, str] | None = None,
    max_categories: int = MAX_CATEGORIES,
    max_int_categories: int = MAX_INT_CATEGORIES,
) -> tuple[Column, ...]:
    """Infers one `Column` per DataFrame column (rule in the module docstring).

    Args:
      df: a pandas DataFrame.
      target: name of the target column (categorical, at least two classes), or None.
      kinds: caller overrides, column name -> "numeric" | "integer" | "categorical".
      max_categories: the most categories a categorical column may have.
      max_int_categories: integer-valued columns with at most this many distinct
        values are categorical, with more they are integer.

    Returns:
      The columns in table order, the target flagged.

    Raises:
      SchemaError: naming the column and the fix, for: a missing target, a target with
        one class, duplicate or empty column names, an all-missing or constant column,
        an unsupported dtype (dates, complex, ...), more categories than the cap, an
        override naming an unknown column or kind, or a non-numeric column forced to
        a numeric kind.

    Examples:
      >>> import pandas as pd
      >>> df = pd.DataFrame({"a": [0.5, 1.5, 2.5], "b": ["x", "y", "x"]})
      >>> [(c.name, c.kind) for c in infer_schema(df, target="b")]
      [('a', 'numeric'), ('b', 'categorical')]
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    names = [str(c) for c in df.columns]
    seen: set[str] = set()
    for name in names:
        if not name.strip():
            raise SchemaError("a column has an empty name; give every column a name")
        if name in seen:
            raise SchemaError(
                f"column {name!r} appears more than once; rename or drop the duplicates"
            )
        seen.add(name)
    if df.shape[0] < 2:
        raise SchemaError(
            f"the table has {df.shape[0]} row(s); fitting needs at least 2"
        )
    kinds = dict(kinds or {})
    for name, kind in kinds.items():
        if name not in seen:
            raise SchemaError(
                f"kind override for column {name!r}, which is not in the table "
                f"(columns: {names})"
            )
        if kind not in _KINDS:
            raise SchemaError(
                f"column {name!r}: kind must be one of {_KINDS}, got {kind!r}"
            )
    if target is not None:
        if target not in seen:
            raise SchemaError(
                f"target column {target!r} is not in the table; columns are {names}"
            )
        if kinds.get(target, "categorical") != "categorical":
            raise SchemaError(
                f"target column {target!r} must be categorical (classification), not "
                f"{kinds[target]!r}; drop the override"
            )
    columns = []
    for name, series in zip(
        names, (df.iloc[:, j] for j in range(df.shape[1])), strict=False
    ):
        is_target = name == target
        kind = "categorical" if is_target else kinds.get(name)
        columns.append(
            _infer_column(
                series, name, kind, is_target, max_categories, max_int_categories
            )
        )
    return tuple(columns)


def _infer_column(
    series: Any, name: str, kind: str | None, is_target: bool, cap: int, int_cap: int
) -> Column:
    import pandas as pd

    what = f"target column {name!r}" if is_target else f"column {name!r}"
    dtype = series.dtype
    values = series.dropna()
    if values.empty:
        raise SchemaError(f"{what} has only missing values; drop it or fill it in")
    textual = (
        pd.api.types.is_bool_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(dtype)
        or dtype is np.dtype(object)
    )
    numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(
        dtype
    )
    if not textual and not numeric or pd.api.types.is_complex_dtype(dtype):
        raise SchemaError(
            f"{what} has unsupported dtype {dtype}; convert it to numbers (e.g. a "
            f"date to "
            f"days since an origin) or strings, or drop it"
        )
    if textual and dtype is np.dtype(object):
        # object columns of numbers (e.g. mixed ints) are numbers, not labels.
        as_num = pd.to_numeric(values, errors="coerce")
        if (
            as_num.notna().all()
            and not values.map(lambda v: isinstance(v, (str, bool))).any()
        ):
            values, textual, numeric = as_num.astype(float), False, True
    labels = ordered_labels(values.unique())
    n_unique = len(labels)
    if n_unique < 2:
        if is_target:
            raise SchemaError(
                f"{what} has a single class {labels[0]!r}; a classifier needs at least "
                f"two classes - check the filter that produced the table"
            )
        raise SchemaError(
            f"column {name!r} is constant ({labels[0]!r}); drop it - it carries no "
            f"information"
        )
    whole = numeric and bool(
        np.all(np.asarray(values, float) == np.round(np.asarray(values, float)))
    )
    if kind is None:
        if textual:
            kind = "categorical"
        elif whole:
            kind = "categorical" if n_unique <= int_cap else "integer"
        else:
            kind = "numeric"
    if kind in ("numeric", "integer") and textual:
        raise SchemaError(
            f"{what} holds text labels and cannot be {kind!r}; declare it categorical "
            f"or convert it to numbers"
        )
    if kind == "integer" and not whole:
        raise SchemaError(
            f"{what} holds non-integer values and cannot be 'integer'; declare it "
            f"'numeric'"
        )
    if kind != "categorical":
        return Column(name, kind)  # type: ignore[arg-type]
    if n_unique > cap:
        # Only a column of numbers can be declared numeric (text labels cannot).
        numeric_ok = not is_target and (
            numeric or pd.to_numeric(values, errors="coerce").notna().all()
        )
        raise SchemaError(
            f"{what} has {n_unique} categories, more than the cap of {cap}; "
            + (
                "bin it, drop it, declare it numeric, or raise max_categories"
                if numeric_ok
                else "bin it (group rare labels), drop it, or raise max_categories"
            )
        )
    return Column(name, "categorical", tuple(labels), is_target=is_target)


def encode(df: Any, columns: Sequence[Column]) -> np.ndarray:
    """Encodes a DataFrame as (n, d) float64 values, NaN where missing.

    Categorical columns become codes into `Column.categories`.

    Args:
      df: a DataFrame holding every column of `columns`.
      columns: the schema.

    Returns:
      (n, d) float64, columns in `columns` order.

    Raises:
      SchemaError: a missing column, a label not in the column's categories, or a
        non-numeric, infinite or beyond-float32 value in a numeric column (naming
        the column and the row).

    Examples:
      >>> import pandas as pd
      >>> from jaxscm import Column
      >>> cols = [Column("b", "categorical", ("x", "y"))]
      >>> encode(pd.DataFrame({"b": ["y", "x"]}), cols)
      array([[1.],
             [0.]])
    """
    import pandas as pd

    out = np.empty((df.shape[0], len(columns)), np.float64)  # NaN where missing
    by_name = {str(c): c for c in df.columns}
    for j, col in enumerate(columns):
        if col.name not in by_name:
            raise SchemaError(f"column {col.name!r} is missing from the table")
        series = df[by_name[col.name]]
        missing = series.isna().to_numpy()
        if col.kind == "categorical":
            out[:, j] = col.code_of(series.to_numpy(dtype=object, na_value=None))
        else:
            num = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
            bad = np.isnan(num) & ~missing
            if bad.any():
                raise SchemaError(
                    f"column {col.name!r} is {col.kind} but holds "
                    f"{series[bad].iloc[0]!r}; fix the value or declare it categorical"
                )
            with np.errstate(invalid="ignore"):
                huge = np.abs(num) > _FLOAT32_MAX  # inf too
            if huge.any():
                i = int(np.flatnonzero(huge)[0])
                raise SchemaError(
                    f"column {col.name!r} holds {num[i]:g} in row {i}, which is "
                    "infinite or beyond float32's range (about 3.4e38); replace it "
                    "(an empty cell is a missing value) or rescale the column"
                )
            out[:, j] = num
    return out


def prepare(
    df: Any,
    target: str | None = None,
    *,
    columns: Sequence[Column] | None = None,
    kinds: Mapping[str, str] | None = None,
    max_categories: int = MAX_CATEGORIES,
) -> Prepared:
    """Infers (or takes) the schema, encodes, and applies the missing-value policy.

    Args:
      df: the table: a DataFrame, or an (n, d) array already encoded in `columns`'
        schema (category codes, NaN where missing), which is not encoded again.
      target: the target column name (ignored when `columns` is given).
      columns: a schema to use instead of inferring one (required with an array).
      kinds: overrides for `infer_schema`.
      max_categories: the category cap for `infer_schema`.

    Returns:
      A `Prepared` table without missing values.

    Raises:
      SchemaError: as `infer_schema` and `encode`; a table column the schema lacks;
        an array without `columns`, of another width, or holding invalid codes.
    """
    if not type(df).__module__.startswith("pandas"):
        if columns is None:
            raise SchemaError(
                "an encoded (n, d) array needs its schema; pass columns=..."
            )
        columns = tuple(columns)
        x = np.array(df, np.float64)  # a copy: imputation fills it in place
        if x.ndim != 2 or x.shape[1] != len(columns):
            raise SchemaError(
                f"expected an (n, {len(columns)}) array of codes for the columns "
                f"{[c.name for c in columns]}, got shape {x.shape}"
            )
        for j, col in enumerate(columns):
            if col.kind == "categorical":
                col.check_codes(x[:, j])
    else:
        if columns is None:
            columns = infer_schema(
                df, target, kinds=kinds, max_categories=max_categories
            )
        columns = tuple(columns)
        extra = sorted(set(map(str, df.columns)) - {c.name for c in columns})
        if extra:
            raise SchemaError(
                f"columns {extra} of the table are not in the schema; drop them or "
                f"add them to the schema"
            )
        x = encode(df, columns)
    missing = np.isnan(x)
    rate = {c.name: float(missing[:, j].mean()) for j, c in enumerate(columns)}
    keep = np.ones(len(x), bool)
    for j, c in enumerate(columns):
        if c.is_target:
            keep &= ~missing[:, j]
    x = x[keep]
    if len(x) < 2:
        raise SchemaError("fewer than 2 rows have a target value; fill in the target")
    for j, c in enumerate(columns):
        col = x[:, j]
        gaps = np.isnan(col)
        if not gaps.any():
            continue
        if c.kind == "categorical":
            codes, counts = np.unique(col[~gaps], return_counts=True)
            col[gaps] = codes[np.argmax(counts)]
        else:
            fill = float(np.median(col[~gaps]))
            col[gaps] = np.round(fill) if c.kind == "integer" else fill
    return Prepared(columns, x, rate, int((~keep).sum()))


def as_prepared(
    x: Any, columns: Sequence[Column] | None = None, target: str | None = None
) -> Prepared:
    """The `Prepared` table of a DataFrame, an (n, d) array, or a `Prepared` as is.

    Args:
      x: a DataFrame (schema inferred, or `columns` used; missing values imputed),
        an (n, d) array of values / category codes without missing values, or a
        `Prepared` (returned as is).
      columns: the schema (required with an array holding categorical codes; an
        array without it is taken as all numeric).
      target: the target column name, when `x` is a DataFrame and `columns` is None.

    Raises:
      ValueError: NaNs in an array, a column count that does not match, or a
        `Prepared` with other columns than `columns`.
    """
    if isinstance(x, Prepared):
        if columns is not None and tuple(columns) != x.columns:
            raise ValueError("the prepared table has other columns than `columns`")
        return x
    if type(x).__module__.startswith("pandas"):
        return prepare(x, target, columns=columns)
    data = np.asarray(x, np.float64)
    if data.ndim != 2:
        raise ValueError(f"expected an (n, d) table, got shape {data.shape}")
    if np.isnan(data).any():
        j = int(np.argwhere(np.isnan(data))[0, 1])
        raise ValueError(
            f"column {j} holds NaN; pass a DataFrame (missing values are imputed) or "
            f"impute them first"
        )
    if columns is None:
        columns = tuple(Column(f"x{j}") for j in range(data.shape[1]))
    columns = tuple(columns)
    if len(columns) != data.shape[1]:
        raise ValueError(f"{len(columns)} columns for a table of {data.shape[1]}")
    return Prepared(columns, data, {c.name: 0.0 for c in columns}, 0)


def to_dowhy_frame(x: np.ndarray, columns: Sequence[Column]) -> Any:
    """The DataFrame DoWhy is fitted on: labels (str) for categorical columns.

    DoWhy encodes string columns itself (one-hot, or CatBoost past 7 categories) and
    its classifiers learn string classes, which `jaxscm.distill` maps back to codes.
    """
    import pandas as pd

    data: dict[str, Any] = {}
    for j, col in enumerate(columns):
        v = x[:, j]
        if col.kind == "categorical":
            data[col.name] = col.labels_of(v)
        elif col.kind == "integer":
            data[col.name] = v.astype(np.int64)
        else:
            data[col.name] = v.astype(np.float64)
    return pd.DataFrame(data)
