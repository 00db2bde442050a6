"""Tables -> the numeric arrays TabPFN and the fine-tuner work on, and back.

One encoding serves the real rows and the synthetic ones: numeric columns stay
floats, categorical columns become integer codes (as floats) into the categories seen
in training, labels become codes into `classes`. The SCM ensemble samples its own
codes (`jaxscm.Column.categories`); `TableEncoder.synthetic_decoder` maps them onto
ours by label, so an SCM fitted with another category order still lines up.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd


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


def _label_key(v: Any) -> str:
    """Labels are matched across tables and SCMs by their string form (1 == "1")."""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        v = int(v)
    return str(v)


@dataclasses.dataclass(frozen=True)
class TableEncoder:
    """The fitted encoding of one training table.

    Attributes:
      features: feature names in column order (``x0, x1, ...`` for arrays).
      categories: per feature, the category labels seen in training (empty tuple
        for a numeric feature); code i <-> categories[i].
      classes: the class labels, sorted (sklearn's `classes_`).
      from_frame: whether training got a DataFrame (then columns are matched by name).
    """

    features: tuple[str, ...]
    categories: tuple[tuple[str, ...], ...]
    classes: np.ndarray
    from_frame: bool

    @property
    def categorical_indices(self) -> list[int]:
        """Indices of the categorical features."""
        return [i for i, c in enumerate(self.categories) if c]

    @classmethod
    def fit(cls, X: Any, y: Any) -> TableEncoder:
        """Learns the columns, categories and classes of a training table.

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
        cats = []
        for name in frame.columns:
            s = frame[name]
            if not _is_categorical(s):
                cats.append(())
            elif isinstance(s.dtype, pd.CategoricalDtype):
                cats.append(tuple(_label_key(c) for c in s.cat.categories))
            else:
                vals = s.dropna().map(_label_key).unique().tolist()
                cats.append(tuple(sorted(vals)))
        return cls(
            tuple(str(c) for c in frame.columns), tuple(cats), classes, from_frame
        )

    def transform(self, X: Any) -> np.ndarray:
        """Encodes features as a float32 matrix (categorical codes, NaN = missing).

        A category not seen in training becomes missing (NaN), which TabPFN treats
        as a missing value; a `UserWarning` names the column and the values.

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
        out = np.empty(frame.shape, np.float32)
        for j, (name, cats) in enumerate(
            zip(self.features, self.categories, strict=True)
        ):
            s = frame.iloc[:, j]
            if not cats:
                try:
                    out[:, j] = pd.to_numeric(s, errors="raise").to_numpy(np.float32)
                except (ValueError, TypeError) as err:
                    raise ValueError(
                        f"column {name!r} was numeric in training but holds "
                        f"non-numbers now: {err}"
                    ) from err
                continue
            index = {c: i for i, c in enumerate(cats)}
            keys = s.map(lambda v: None if pd.isna(v) else _label_key(v))
            codes = keys.map(
                lambda k, ix=index: np.nan if k is None else ix.get(k, -1.0)
            )
            codes = np.array(codes.to_numpy(np.float64), copy=True)
            unseen = codes == -1.0
            if unseen.any():
                vals = sorted(set(keys[unseen]))[:5]
                warnings.warn(
                    f"column {name!r}: {int(unseen.sum())} value(s) not seen in "
                    "training "
                    f"({vals}) are treated as missing",
                    UserWarning,
                    stacklevel=3,
                )
                codes[unseen] = np.nan
            out[:, j] = codes
        return out

    def encode_labels(self, y: Any) -> np.ndarray:
        """Label codes (int64) into `classes`.

        Raises:
          ValueError: naming the labels that are not among the training classes.
        """
        yv = _as_labels(y, None)
        codes = np.searchsorted(self.classes, yv)
        codes = np.clip(codes, 0, len(self.classes) - 1)
        bad = self.classes[codes] != yv
        if bad.any():
            raise ValueError(
                f"labels {sorted(set(yv[bad].tolist()))[:5]} were not seen in training "
                f"(classes {self.classes.tolist()})"
            )
        return codes.astype(np.int64)

    def synthetic_decoder(
        self, columns: Sequence[Any], constants: dict[str, float] | None = None
    ) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """Maps (n, d) samples in an SCM's column order onto (X codes, label codes).

        Args:
          columns: the SCM's `jaxscm.Column`s; one of them `is_target`, the others
            named like the features.
          constants: encoded values of features the SCM leaves out because they are
            constant in the training rows; synthetic rows get these values.

        Returns:
          A function of a (n, d) float array returning (X float32 (n', f), y int64
          (n',)); rows whose target is not a training class are dropped.

        Raises:
          ValueError: when the SCM lacks a feature or the target, or a column kind
            does not match (e.g. a numeric SCM column for a categorical feature).
        """
        names = [c.name for c in columns]
        targets = [i for i, c in enumerate(columns) if c.is_target]
        if len(targets) != 1:
            raise ValueError(
                f"the SCM must mark exactly one target column, found {len(targets)}"
            )
        t = targets[0]
        constants = dict(constants or {})
        missing = [f for f in self.features if f not in names and f not in constants]
        if missing:
            raise ValueError(
                f"the SCM has no columns {missing}; fit it on the same table as the "
                "classifier"
            )
        modelled = [j for j, f in enumerate(self.features) if f in names]
        pos = np.array([names.index(self.features[j]) for j in modelled], np.int64)
        fixed = {j: constants[f] for j, f in enumerate(self.features) if f not in names}
        maps: dict[int, np.ndarray] = {}
        for k, j in enumerate(modelled):
            f, cats = self.features[j], self.categories[j]
            col = columns[pos[k]]
            if cats and col.kind != "categorical":
                raise ValueError(
                    f"column {f!r} is categorical in the table but {col.kind} in "
                    "the SCM"
                )
            if not cats and col.kind == "categorical":
                raise ValueError(
                    f"column {f!r} is numeric in the table but categorical in the SCM"
                )
            if cats:
                index = {c: i for i, c in enumerate(cats)}
                maps[j] = np.array(
                    [index.get(_label_key(c), np.nan) for c in col.categories],
                    np.float64,
                )
        tcol = columns[t]
        if tcol.kind != "categorical":
            raise ValueError(
                f"the SCM's target {tcol.name!r} is {tcol.kind}, not categorical; a "
                "classifier needs a categorical target node"
            )
        class_index = {_label_key(c): i for i, c in enumerate(self.classes)}
        ymap = np.array([class_index.get(_label_key(c), -1) for c in tcol.categories])
        if not np.isin(np.arange(len(self.classes)), ymap).all():
            absent = [c for i, c in enumerate(self.classes) if i not in ymap]
            raise ValueError(
                f"the SCM's target {tcol.name!r} cannot produce the classes {absent} "
                f"(its categories are {list(tcol.categories)})"
            )

        def decode(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            x = np.asarray(x)
            X = np.empty((len(x), len(self.features)), np.float32)
            X[:, modelled] = x[:, pos]
            for j, v in fixed.items():
                X[:, j] = v
            for j, m in maps.items():
                codes = X[:, j]
                ok = np.isfinite(codes) & (codes >= 0) & (codes < len(m))
                X[:, j] = np.where(
                    ok, m[np.where(ok, codes, 0).astype(np.int64)], np.nan
                )
            yc = x[:, t]
            ok = np.isfinite(yc) & (yc >= 0) & (yc < len(ymap))
            y = np.where(ok, ymap[np.where(ok, yc, 0).astype(np.int64)], -1)
            keep = y >= 0
            return X[keep], y[keep].astype(np.int64)

        return decode

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (labels keep their type: int, float or str)."""
        return {
            "features": list(self.features),
            "categories": [list(c) for c in self.categories],
            "classes": self.classes.tolist(),
            "classes_dtype": self.classes.dtype.kind,
            "from_frame": self.from_frame,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TableEncoder:
        """Inverse of `to_json`."""
        kind = d["classes_dtype"]
        classes = np.asarray(d["classes"], dtype=object if kind in "OUS" else None)
        return cls(
            tuple(d["features"]),
            tuple(tuple(c) for c in d["categories"]),
            classes,
            bool(d["from_frame"]),
        )


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
