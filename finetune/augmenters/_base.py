"""What every generator shares: the schema, class requests, and the `Generator` base.

A generator learns a labelled table and draws new rows of it. Every generator goes
through the one schema of the project (`jaxscm.Column`): `Generator.fit` builds it
once (`jaxscm.fitting.prepare`: kinds, category codes, missing values imputed), hands
the subclass the (n, d) codes with the target as the last column, and `sample`
decodes what the subclass draws back into the training columns, dtypes and
categories (`bridge.to_frame`). So a subclass works on numbers only:

* `_fit(codes, seed)`: learn from (n, d) float64 codes, target last;
* `_sample(n, seed, labels)`: return (n, d) codes; `labels` is None (draw the
  classes as the model does) or an (n,) array of class codes the rows must have.

Class requests (`sample(n, y=...)`), resolved by `class_codes` (`bridge._classes`):

* None: the generator's own class distribution;
* a label: every row of that class;
* a sequence of n labels: row i of class y[i];
* a mapping label -> share (shares are normalised; absent classes get none);
* "balanced": equal shares of every training class.

How a generator honours them is its `conditional` attribute: "conditional" (the
model is conditioned on the class), "rejection" (rows are drawn and kept by class),
or "refuse" (a class request raises a `ValueError` naming the fix).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from bridge._classes import class_codes
from jaxscm._schema import Column

CONDITIONAL = ("conditional", "rejection", "refuse")
_TARGET = "__target__"


class Generator(abc.ABC):
    """A tabular generator with one interface (module docstring).

    Subclasses set `name`, `conditional`, `streaming` (True when fresh rows per
    fine-tuning step are cheap: the loop then draws a new batch every step; else one
    pool is drawn once) and implement `_fit` and `_sample`.

    Attributes (after `fit`):
      columns_: the schema of the training table, features then the target (last).
      classes_: the target's labels, in code order.
      class_share_: the training class shares, aligned with `classes_`.
      n_train_: training rows.
    """

    name: ClassVar[str] = ""
    conditional: ClassVar[str] = "refuse"
    streaming: ClassVar[bool] = False

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        columns: Sequence[Column] | None = None,
        seed: int = 0,
    ) -> Generator:
        """Learns the table `X` with labels `y`.

        Args:
          X: a DataFrame of features.
          y: the labels (a Series or array of length len(X)); at least two classes.
            Without `columns`, a Series' name (when X has no such column) names
            the target column, else it is "__target__".
          columns: the schema of `X`'s columns plus the target (the column flagged
            `is_target`, last), e.g. the estimator's; inferred when None.
          seed: the one seed of the fit.

        Returns:
          self.

        Raises:
          SchemaError: a bad table, naming the column and the fix (one class, an
            all-missing column, text in a numeric column, ...).
        """
        import pandas as pd

        from jaxscm.fitting import prepare

        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
        name = getattr(y, "name", None)
        y = np.asarray(y, dtype=object)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has shape {y.shape}")
        y = pd.Series(y, index=X.index)
        target = _target_name(X, columns, name)
        frame = X.assign(**{target: y})
        if columns is not None:
            columns = _target_last(columns, target)
            frame = frame[[c.name for c in columns]]
        table = prepare(frame, target, columns=columns)
        self.columns_: tuple[Column, ...] = table.columns
        self.classes_: tuple[str, ...] = table.columns[-1].categories
        counts = np.bincount(
            table.codes[:, -1].astype(np.int64), minlength=len(self.classes_)
        )
        self.class_share_ = counts / counts.sum()
        self.n_train_ = int(table.codes.shape[0])
        self._feature_names = [c.name for c in table.columns[:-1]]
        self.seed_ = int(seed)
        self._fit(table.codes, int(seed))
        return self

    def sample(self, n: int, *, seed: int = 0, y: Any = None) -> tuple[Any, Any]:
        """Draws `n` rows.

        Args:
          n: rows.
          seed: the seed of this draw (the same seed gives the same rows).
          y: class request (module docstring), or None.

        Returns:
          `(X, y)`: a DataFrame with the training feature columns (same names,
          order, dtypes and categories) and the labels as a categorical Series over
          `classes_` (the schema's label strings).

        Raises:
          ValueError: `n` < 1, an unknown class, or a class request this generator
            refuses.
        """
        import bridge

        if not hasattr(self, "columns_"):
            raise RuntimeError(f"the {self.name} generator is not fitted; call fit")
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        labels = class_codes(y, int(n), self.classes_, seed)
        if labels is not None and self.conditional == "refuse":
            raise ValueError(
                f"the {self.name} generator cannot draw rows of given classes; call "
                "sample(n) without y=, or use a conditional generator (names() lists "
                "them with their `conditional` attribute)"
            )
        codes = np.asarray(self._sample(int(n), seed, labels), np.float64)
        if codes.shape != (n, len(self.columns_)):
            raise AssertionError(
                f"{self.name} drew shape {codes.shape}, expected "
                f"({n}, {len(self.columns_)})"
            )
        bad = ~np.isfinite(codes).all(axis=0)
        if bad.any():
            raise FloatingPointError(
                f"the {self.name} generator drew non-finite values in column "
                f"{self.columns_[int(np.argmax(bad))].name!r}"
            )
        if labels is not None and not (codes[:, -1] == labels).all():
            raise AssertionError(f"{self.name} did not honour the class request")
        frame = bridge.to_frame(codes, self.columns_)
        return frame[self._feature_names], frame[self.columns_[-1].name]

    def _labels(self, n: int, seed: int, labels: np.ndarray | None) -> np.ndarray:
        """`labels`, or (with None) n class codes in the training shares, shuffled.

        The shares become counts by largest remainder (`class_codes`), so a pool of
        n rows has the training class mix up to one row per class.
        """
        if labels is not None:
            return labels
        shares = dict(zip(self.classes_, self.class_share_.tolist(), strict=True))
        out = class_codes(shares, n, self.classes_, seed)
        assert out is not None
        return out

    def _rng(self, seed: int) -> np.random.Generator:
        """The NumPy generator of one draw: the fit seed and the draw's seed."""
        return np.random.default_rng([self.seed_, int(seed)])

    def _kinds(self) -> tuple[str, ...]:
        """The feature columns' kinds ("numeric", "integer", "categorical")."""
        return tuple(c.kind for c in self.columns_[:-1])

    @abc.abstractmethod
    def _fit(self, codes: np.ndarray, seed: int) -> None:
        """Learns from (n, d) float64 codes, the target's class codes last."""

    @abc.abstractmethod
    def _sample(self, n: int, seed: int, labels: np.ndarray | None) -> np.ndarray:
        """(n, d) codes; with `labels`, row i must have class code labels[i]."""


def _target_name(X: Any, columns: Sequence[Column] | None, name: Any) -> str:
    """The target's column name: the schema's, else y's own name, else __target__."""
    if columns is None:
        if isinstance(name, str) and name and name not in X.columns:
            return name
        if _TARGET in X.columns:
            raise ValueError(f"X must not have a column named {_TARGET!r}")
        return _TARGET
    targets = [c.name for c in columns if c.is_target]
    if len(targets) != 1:
        raise ValueError(
            f"columns must flag exactly one target (is_target=True), got {targets}"
        )
    return targets[0]


def _target_last(columns: Sequence[Column], target: str) -> tuple[Column, ...]:
    cols = tuple(columns)
    return tuple(c for c in cols if c.name != target) + tuple(
        c for c in cols if c.name == target
    )
