"""Samples (n, d) float arrays -> pandas DataFrames with the table's own dtypes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from jaxscm import Column


def columns_of(model_or_columns: Any) -> tuple[Column, ...]:
    """The `Column` tuple of an `SCM`/`Ensemble`, or the given sequence of columns."""
    cols = getattr(model_or_columns, "columns", model_or_columns)
    cols = tuple(cols)
    for c in cols:
        if not isinstance(c, Column):
            raise TypeError(
                f"expected jaxscm.Column objects (or a model with .columns), got "
                f"{type(c).__name__}"
            )
    return cols


def to_frame(x: Any, columns: Sequence[Column] | Any) -> pd.DataFrame:
    """Decodes samples into a DataFrame: category labels, integers and floats.

    Categorical columns hold integer codes as floats in the samples; here they become
    `pandas.Categorical` with the column's labels (a NaN code stays missing). Integer
    columns become int64 (nullable `Int64` when a value is NaN), numeric columns keep
    the float dtype of `x`.

    Args:
      x: (n, d) samples: a JAX array, NumPy array or torch tensor (moved to the host).
      columns: the columns in the order of `x`'s columns (`scm.columns` for
        `jaxscm.sample(key, scm, n)`), or the model itself.

    Returns:
      A DataFrame with one column per `Column`, named by `Column.name`.

    Raises:
      ValueError: on a shape mismatch, or naming the column when a categorical code is
        not an integer in [0, n_categories) or an integer column holds a non-integer.

    Examples:
      >>> import numpy as np
      >>> from jaxscm import Column
      >>> cols = (Column("a"), Column("b", "categorical", ("no", "yes")))
      >>> to_frame(np.array([[0.5, 1.0], [1.5, 0.0]], np.float32), cols)["b"].tolist()
      ['yes', 'no']
    """
    cols = columns_of(columns)
    arr = _to_numpy(x)
    if arr.ndim != 2 or arr.shape[1] != len(cols):
        raise ValueError(
            f"to_frame needs (n, {len(cols)}) samples for columns "
            f"{[c.name for c in cols]}, got shape {arr.shape}; for an ensemble's "
            f"(k, n, d) samples decode one member at a time, x[b]"
        )
    data: dict[str, Any] = {}
    for j, col in enumerate(cols):
        v = arr[:, j]
        if col.kind == "categorical":
            data[col.name] = _categorical(v, col)
        elif col.kind == "integer":
            data[col.name] = _integer(v, col)
        else:
            data[col.name] = v.astype(
                arr.dtype if arr.dtype.kind == "f" else np.float64
            )
    return pd.DataFrame(data)


def _to_numpy(x: Any) -> np.ndarray:
    if type(x).__module__.startswith("torch"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _codes(v: np.ndarray, col: Column) -> np.ndarray:
    """Integer codes with -1 for missing, checked by the schema's own codec."""
    return col.check_codes(v)


def _categorical(v: np.ndarray, col: Column) -> pd.Categorical:
    # from_codes maps -1 to a missing value, which is what a NaN code means.
    return pd.Categorical.from_codes(_codes(v, col), categories=list(col.categories))


def _integer(v: np.ndarray, col: Column) -> Any:
    missing = np.isnan(v) if v.dtype.kind == "f" else np.zeros(v.shape, bool)
    vals = v[~missing]
    if (vals != np.round(vals)).any():
        raise ValueError(
            f"column {col.name!r} is declared integer but holds "
            f"{vals[vals != np.round(vals)][0]!r}; round the samples or declare it "
            f"numeric"
        )
    if missing.any():
        out = pd.array(np.where(missing, 0, v).astype(np.int64), dtype="Int64")
        out[missing] = pd.NA
        return out
    return v.astype(np.int64)
