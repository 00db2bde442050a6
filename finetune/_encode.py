"""Tables -> the numeric arrays TabPFN and the fine-tuner work on, and back.

The estimator's encoder builds the table's one schema (a `jaxscm.Column` per feature
and one for the target), once: numeric columns stay floats, non-numeric columns are
categorical and become integer codes (as floats) into the categories seen in
training, labels become codes into `classes`. Every encoding goes through that
schema's codec (`Column.code_of`). The estimator hands the same `Column`s to
`jaxscm.fit_scm(..., columns=...)`, so the SCM ensemble samples exactly these codes:
turning its rows into training rows is a column selection
(`TableEncoder.synthetic_selection`), not a remapping.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from jaxscm import Column
from jaxscm._schema import label, ordered_labels


@dataclasses.dataclass(frozen=True)
class Selection:
    """Where each encoder column sits in an SCM's sampled rows (one shared schema).

    Attributes:
      features: (f,) int64; for encoder feature j, its column index in the SCM's
        rows, or -1 for a feature left out of the SCM (constant in training).
      fill: (f,) float32; the encoded value of each left-out feature, 0 elsewhere.
      target: the target's column index in the SCM's rows.
      n_classes: the number of classes (label codes 0..n_classes-1).
    """

    features: np.ndarray
    fill: np.ndarray
    target: int
    n_classes: int


def _is_categorical(s: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s))


def _labels(s: pd.Series) -> np.ndarray:
    """A column's values as objects, None where missing (what `code_of` takes)."""
    return s.to_numpy(dtype=object, na_value=None)


@dataclasses.dataclass(frozen=True)
class TableEncoder:
    """The fitted encoding of one training table: its schema and class labels.

    Attributes:
      columns: the schema: one `jaxscm.Column` per feature (numeric, or categorical
        with the labels seen in training; code i <-> categories[i]) in column order,
        then the target (categorical, `is_target`, one category per class).
      classes: the class labels in their original type, in the target column's
        order (sorted, as `np.unique`: sklearn's `classes_`).
      from_frame: whether training got a DataFrame (then columns are matched by name).
    """

    columns: tuple[Column, ...]
    classes: np.ndarray
    from_frame: bool

    @property
    def feature_columns(self) -> tuple[Column, ...]:
        """The features' columns, in column order."""
        return self.columns[:-1]

    @property
    def target(self) -> Column:
        """The target's column (categorical, one category per class)."""
        return self.columns[-1]

    @property
    def features(self) -> tuple[str, ...]:
        """Feature names in column order (``x0, x1, ...`` for arrays)."""
        return tuple(c.name for c in self.feature_columns)

    @property
    def categories(self) -> tuple[tuple[str, ...], ...]:
        """Per feature, its category labels (empty for a numeric feature)."""
        return tuple(c.categories for c in self.feature_columns)

    @property
    def categorical_indices(self) -> list[int]:
        """Indices of the categorical features."""
        return [i for i, c in enumerate(self.feature_columns) if c.categories]

    @classmethod
    def fit(cls, X: Any, y: Any) -> TableEncoder:
        """Builds the schema (columns, categories, classes) of a training table.

        Rule: a non-numeric column (strings, bools, pandas categories) is
        categorical, with its categories in `jaxscm._schema.ordered_labels` order (a
        pandas categorical keeps its dtype's order); a numeric column is numeric;
        the target is categorical.

        Raises:
          ValueError: for an empty table, a row-count mismatch, duplicate column
            names, missing labels or fewer than two classes.
        """
        frame, from_frame = _as_frame(X, None)
        if frame.shape[0] == 0 or frame.shape[1] == 0:
            raise ValueError(f"need a non-empty 2-D table, got shape {frame.shape}")
        yv = _as_labels(y, len(frame))
        classes = np.unique(yv)
        if len(classes) < 2:
            raise ValueError(
                f"the training labels hold only one class ({_plain(classes[0])!r}); a "
                "classifier "
                "needs at least two classes in the training rows"
            )
        columns = []
        for name in frame.columns:
            s = frame[name]
            if not _is_categorical(s):
                columns.append(Column(str(name)))
                continue
            if isinstance(s.dtype, pd.CategoricalDtype):
                cats = tuple(label(c) for c in s.cat.categories)
            else:
                cats = ordered_labels(_labels(s))
            columns.append(Column(str(name), "categorical", cats))
        features = tuple(c.name for c in columns)
        target = Column(
            _target_name(y, features),
            "categorical",
            tuple(label(c) for c in classes),
            is_target=True,
        )
        return cls((*columns, target), classes, from_frame)

    def transform(self, X: Any, dtype: Any = np.float32) -> np.ndarray:
        """Encodes features as a float matrix (categorical codes, NaN = missing).

        A category not seen in training becomes missing (NaN), which TabPFN treats
        as a missing value; a `UserWarning` names the column and the values.

        Args:
          X: the features (the training columns).
          dtype: float32 (what TabPFN takes) or float64 (what the SCM is fitted on).

        Raises:
          ValueError: naming the missing and unexpected columns, when the table's
            columns differ from training.
        """
        frame, _ = _as_frame(X, self.features if not self.from_frame else None)
        names = [str(c) for c in frame.columns]
        if self.from_frame and names != list(self.features):
            missing = [c for c in self.features if c not in names]
            extra = [c for c in names if c not in self.features]
            if missing or extra:
                raise ValueError(
                    f"the columns differ from those seen in fit: missing {missing}, "
                    f"unexpected {extra}; pass the same columns as in training"
                )
            frame = frame[list(self.features)]
        if frame.shape[1] != len(self.features):
            raise ValueError(
                f"X has {frame.shape[1]} features, but the model was fitted with "
                f"{len(self.features)}"
            )
        out = np.empty(frame.shape, dtype)
        for j, col in enumerate(self.feature_columns):
            s = frame.iloc[:, j]
            if col.kind != "categorical":
                try:
                    out[:, j] = pd.to_numeric(s, errors="raise").to_numpy(dtype)
                except (ValueError, TypeError) as err:
                    raise ValueError(
                        f"column {col.name!r} was numeric in training but holds "
                        f"non-numbers now: {err}"
                    ) from err
                continue
            values = _labels(s)
            codes = col.code_of(values, unknown="missing")
            unseen = np.isnan(codes) & ~s.isna().to_numpy()
            if unseen.any():
                vals = sorted({label(v) for v in values[unseen]})[:5]
                warnings.warn(
                    f"column {col.name!r}: {int(unseen.sum())} value(s) not seen in "
                    "training "
                    f"({vals}) are treated as missing",
                    UserWarning,
                    stacklevel=3,
                )
            out[:, j] = codes
        return out

    def encode_labels(self, y: Any) -> np.ndarray:
        """Label codes (int64) into `classes`.

        Raises:
          ValueError: naming the labels that are not among the training classes.
        """
        yv = _as_labels(y, None)
        codes = self.target.code_of(yv, unknown="missing")
        bad = np.isnan(codes)
        if bad.any():
            raise ValueError(
                f"labels {sorted(set(yv[bad].tolist()))[:5]} were not seen in training "
                f"(classes {self.classes.tolist()})"
            )
        return codes.astype(np.int64)

    def synthetic_selection(
        self, columns: Sequence[Column], constants: dict[str, float] | None = None
    ) -> Selection:
        """Where the encoder's features and target sit in an SCM's sampled rows.

        The SCM must share this encoder's schema (`jaxscm.fit_scm(...,
        columns=...)` with these `Column`s, as the estimator does): then its codes
        are the encoder's codes and decoding is a column selection.

        Args:
          columns: the SCM's `jaxscm.Column`s; one of them `is_target`, the others
            named like the features.
          constants: encoded values of features the SCM leaves out because they are
            constant in the training rows; synthetic rows get these values.

        Returns:
          The `Selection` (`SyntheticRows` applies it inside the compiled sampler).

        Raises:
          ValueError: when the SCM lacks a feature or the target, a column kind
            does not match (e.g. a numeric SCM column for a categorical feature), or
            its categories or classes differ from the encoder's (naming the column
            and the fix).
        """
        names = [c.name for c in columns]
        targets = [i for i, c in enumerate(columns) if c.is_target]
        if len(targets) != 1:
            raise ValueError(
                f"the SCM must mark exactly one target column, found {len(targets)}"
            )
        constants = dict(constants or {})
        missing = [f for f in self.features if f not in names and f not in constants]
        if missing:
            raise ValueError(
                f"the SCM has no columns {missing}; fit it on the same table as the "
                "classifier"
            )
        fix = (
            "fit the SCM with the estimator's schema, jaxscm.fit_scm(..., "
            "columns=...) with the encoder's columns"
        )
        index = np.full(len(self.features), -1, np.int64)
        fill = np.zeros(len(self.features), np.float32)
        for j, col in enumerate(self.feature_columns):
            if col.name not in names:
                fill[j] = constants[col.name]
                continue
            index[j] = names.index(col.name)
            theirs = columns[index[j]]
            if col.kind == "categorical" and theirs.kind != "categorical":
                raise ValueError(
                    f"column {col.name!r} is categorical in the table but "
                    f"{theirs.kind} in the SCM"
                )
            if col.kind != "categorical" and theirs.kind == "categorical":
                raise ValueError(
                    f"column {col.name!r} is numeric in the table but categorical in "
                    "the SCM"
                )
            if theirs.categories != col.categories:
                raise ValueError(
                    f"column {col.name!r}: the SCM's categories "
                    f"{list(theirs.categories)} differ from the encoder's "
                    f"{list(col.categories)}; {fix}"
                )
        t = targets[0]
        tcol = columns[t]
        if tcol.kind != "categorical":
            raise ValueError(
                f"the SCM's target {tcol.name!r} is {tcol.kind}, not categorical; a "
                "classifier needs a categorical target node"
            )
        absent = [c for c in self.target.categories if c not in tcol.categories]
        if absent:
            raise ValueError(
                f"the SCM's target {tcol.name!r} cannot produce the classes {absent} "
                f"(its categories are {list(tcol.categories)}); {fix}"
            )
        if tcol.categories != self.target.categories:
            raise ValueError(
                f"the SCM's target {tcol.name!r} has the classes "
                f"{list(tcol.categories)}, the encoder "
                f"{list(self.target.categories)}; {fix}"
            )
        return Selection(index, fill, t, len(self.classes))

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (labels keep their type: int, float or str)."""
        return {
            "columns": [c.to_json() for c in self.columns],
            "classes": self.classes.tolist(),
            "classes_dtype": self.classes.dtype.kind,
            "from_frame": self.from_frame,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TableEncoder:
        """Inverse of `to_json` (also reads the features/categories layout of v1)."""
        kind = d["classes_dtype"]
        classes = np.asarray(d["classes"], dtype=object if kind in "OUS" else None)
        if "columns" in d:
            columns = tuple(Column.from_json(c) for c in d["columns"])
        else:  # saved before the encoder held its schema
            features = tuple(str(f) for f in d["features"])
            columns = (
                *(
                    Column(f, "categorical", tuple(c)) if c else Column(f)
                    for f, c in zip(features, d["categories"], strict=True)
                ),
                Column(
                    _target_name(None, features),
                    "categorical",
                    tuple(label(c) for c in classes),
                    is_target=True,
                ),
            )
        return cls(columns, classes, bool(d["from_frame"]))


def _target_name(y: Any, features: tuple[str, ...]) -> str:
    """The target column's name: y's own name unless a feature has it."""
    name = getattr(y, "name", None)
    name = str(name) if name is not None else "target"
    while name in features:
        name = f"{name}_"
    return name


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _as_frame(X: Any, names: Sequence[str] | None) -> tuple[pd.DataFrame, bool]:
    if isinstance(X, pd.DataFrame):
        return X, True
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValueError(
            f"expected a 2-D table (n_samples, n_features), got an array of shape "
            f"{arr.shape}; reshape a single feature with X.reshape(-1, 1)"
        )
    cols = (
        list(names)
        if names is not None and len(names) == arr.shape[1]
        else [f"x{j}" for j in range(arr.shape[1])]
    )
    if arr.dtype.kind in "biuf":
        return pd.DataFrame(arr.astype(np.float64), columns=cols), False
    return pd.DataFrame(arr, columns=cols), False


def _as_labels(y: Any, n: int | None) -> np.ndarray:
    yv = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
    if yv.ndim == 2 and yv.shape[1] == 1:
        raise ValueError(
            "y should be a 1-D array of labels, got a column vector; use y.ravel()"
        )
    if yv.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {yv.shape}")
    if n is not None and len(yv) != n:
        raise ValueError(f"X has {n} rows but y has {len(yv)}")
    if yv.dtype.kind == "f" and np.isnan(yv).any():
        raise ValueError("y holds NaN labels; drop those rows first")
    if yv.dtype.kind == "O":
        if pd.isna(pd.Series(yv)).any():
            raise ValueError("y holds missing labels; drop those rows first")
        kinds = {type(v) for v in yv}
        if len(kinds) > 1:
            yv = yv.astype(str)
    return yv
