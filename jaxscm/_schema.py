"""Column schema: what each node of an SCM means as a table column.

Samples are float arrays. A categorical column holds integer codes 0..k-1 (as floats);
`Column.categories` maps them back to labels. A table's schema is built once (by
`jaxscm.infer_schema`, or by the estimator's encoder) and every later stage - discovery,
DoWhy fitting, distillation, the estimator, `bridge.to_frame` - takes it instead of
re-deriving kinds or labels. The label <-> code codec lives here, on `Column`
(`code_of`, `labels_of`, `check_codes`), with the one label normaliser of the project
(`label`): 1, 1.0 and "1" are the label "1"; True is "True".

Category order (`ordered_labels`): by value when every label is a number (bools,
ints, floats: 2 before 10), by string otherwise - NumPy's `np.unique` order for
number or string labels, hence sklearn's `classes_` order.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable
from typing import Any, Literal

import numpy as np

ColumnKind = Literal["numeric", "integer", "categorical"]
_KINDS = ("numeric", "integer", "categorical")
_NUMBER = (bool, int, float, np.bool_, np.integer, np.floating)


class SchemaError(ValueError):
    """A table that does not fit its schema; the message names the column and fix."""


def label(value: Any) -> str:
    """The label of a value: its string form, whole numbers without a decimal point.

    Examples:
      >>> label(1.0), label(np.int64(2)), label(True), label("x")
      ('1', '2', 'True', 'x')
    """
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if (
        isinstance(value, (int, float, np.integer, np.floating))
        and float(value).is_integer()
    ):
        return str(int(value))
    return str(value)


def is_missing(value: Any) -> bool:
    """None or a float NaN (pandas' missing markers become None on `to_numpy`)."""
    return value is None or (isinstance(value, (float, np.floating)) and value != value)


def ordered_labels(values: Iterable[Any]) -> tuple[str, ...]:
    """The distinct labels of the non-missing `values`, in the project's one order.

    By value when every value is a number (bool, int, float), by string otherwise.

    Examples:
      >>> ordered_labels([10, 2, 2.0]), ordered_labels(["10", "2"])
      (('2', '10'), ('10', '2'))
    """
    vals = [v for v in values if not is_missing(v)]
    if vals and all(isinstance(v, _NUMBER) for v in vals):
        first: dict[str, float] = {}
        for v in vals:
            first.setdefault(label(v), float(v))
        return tuple(sorted(first, key=first.__getitem__))
    return tuple(sorted({label(v) for v in vals}))


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of the table an SCM generates.

    Attributes:
      name: the column name.
      kind: "numeric" (float), "integer" (whole numbers, e.g. counts) or "categorical"
        (integer codes into `categories`).
      categories: labels of a categorical column, code i <-> categories[i]. Empty for
        the other kinds.
      is_target: whether this is the prediction target.
    """

    name: str
    kind: ColumnKind = "numeric"
    categories: tuple[str, ...] = ()
    is_target: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(
                f"column name must be a non-empty string, got {self.name!r}"
            )
        if self.kind not in _KINDS:
            raise ValueError(
                f"column {self.name!r}: kind must be one of {_KINDS}, got {self.kind!r}"
            )
        if self.kind == "categorical":
            if len(self.categories) < 1:
                raise ValueError(
                    f"column {self.name!r}: a categorical column needs its "
                    f"category labels"
                )
            if len(set(self.categories)) != len(self.categories):
                raise ValueError(f"column {self.name!r}: duplicate category labels")
        elif self.categories:
            raise ValueError(
                f"column {self.name!r}: only categorical columns have categories "
                f"(kind is {self.kind!r})"
            )
        object.__setattr__(self, "categories", tuple(str(c) for c in self.categories))

    @functools.cached_property
    def _codes(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.categories)}

    @property
    def _what(self) -> str:
        return (
            f"target column {self.name!r}"
            if self.is_target
            else (f"column {self.name!r}")
        )

    def code_of(self, values: Any, *, unknown: str = "raise") -> np.ndarray:
        """Values -> the column's float64 values: category codes for a categorical.

        Labels are compared by `label` (1, 1.0 and "1" are one label). Missing
        values (None, NaN) become NaN.

        Args:
          values: a sequence or array of labels (categorical) or numbers.
          unknown: for a label not among the categories, "raise" or "missing"
            (NaN).

        Returns:
          (n,) float64.

        Raises:
          SchemaError: a label not among the categories (with unknown="raise"),
            naming the column and the label.

        Examples:
          >>> Column("b", "categorical", ("1", "x")).code_of([1.0, "x", None])
          array([ 0.,  1., nan])
        """
        if unknown not in ("raise", "missing"):
            raise ValueError(f"unknown must be 'raise' or 'missing', got {unknown!r}")
        if self.kind != "categorical":
            try:
                return np.asarray(values, np.float64).ravel()
            except (TypeError, ValueError):  # None for missing, numbers as objects
                values = np.asarray(values, dtype=object).ravel()
                return np.array(
                    [np.nan if is_missing(v) else v for v in values], np.float64
                )
        values = np.asarray(values, dtype=object).ravel()
        lookup = self._codes
        out = np.empty(values.shape[0], np.float64)
        for i, v in enumerate(values):
            code = np.nan if is_missing(v) else lookup.get(label(v))
            if code is None:
                if unknown == "raise":
                    raise SchemaError(
                        f"{self._what}: label {v!r} is not among its categories "
                        f"{list(self.categories)}; fit the schema on a table holding "
                        f"it"
                    )
                code = np.nan
            out[i] = code
        return out

    def check_codes(self, codes: Any) -> np.ndarray:
        """Category codes (floats or ints) -> int64 codes, -1 where NaN (missing).

        Raises:
          ValueError: a value that is not a code in [0, n_categories), naming the
            column.
        """
        v = np.asarray(codes).ravel()
        missing = np.isnan(v) if v.dtype.kind == "f" else np.zeros(v.shape, bool)
        vals = v[~missing]
        bad = (vals != np.round(vals)) | (vals < 0) | (vals >= self.n_categories)
        if bad.any():
            raise ValueError(
                f"column {self.name!r}: value {vals[bad][0]!r} is not a category code "
                f"in [0, {self.n_categories}) for categories {list(self.categories)}"
            )
        out = np.full(v.shape, -1, np.int64)
        out[~missing] = vals.astype(np.int64)
        return out

    def labels_of(self, codes: Any) -> np.ndarray:
        """Category codes -> their labels (object array of str, None where NaN).

        Raises:
          ValueError: a value that is not a category code (see `check_codes`).

        Examples:
          >>> Column("b", "categorical", ("no", "yes")).labels_of([1.0, 0.0]).tolist()
          ['yes', 'no']
        """
        c = self.check_codes(codes)
        out = np.asarray((*self.categories, None), dtype=object)[c]
        return out

    @property
    def n_categories(self) -> int:
        """Number of categories (0 for non-categorical columns)."""
        return len(self.categories)

    def to_json(self) -> dict[str, object]:
        """A JSON-serialisable dict."""
        return {
            "name": self.name,
            "kind": self.kind,
            "categories": list(self.categories),
            "is_target": self.is_target,
        }

    @classmethod
    def from_json(cls, d: dict[str, object]) -> Column:
        """Inverse of `to_json`."""
        return cls(
            name=str(d["name"]),
            kind=d["kind"],  # type: ignore[arg-type]  # validated in __post_init__
            categories=tuple(d.get("categories", ())),  # type: ignore[arg-type]
            is_target=bool(d.get("is_target", False)),
        )
