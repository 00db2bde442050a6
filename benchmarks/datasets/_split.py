"""Low-data train / validation / test splits with per-class minimums."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.datasets._load import DatasetMeta, load_dataset

DEFAULT_MAX_TEST = 2_000
DEFAULT_MIN_MINORITY = 2


@dataclass(frozen=True)
class Split:
    """A train / validation / test split; unpacks as the six frames in that order.

    Attributes:
        X_train, y_train, X_val, y_val, X_test, y_test: The parts (original index kept).
        train_index, val_index, test_index: Row positions in the loaded table
            (disjoint).
        meta: The `DatasetMeta` of the table (`None` when an `(X, y)` pair was given).
        seed: The seed that produced the split.
    """

    X_train: pd.DataFrame
    y_train: pd.Series
    X_val: pd.DataFrame
    y_val: pd.Series
    X_test: pd.DataFrame
    y_test: pd.Series
    train_index: np.ndarray
    val_index: np.ndarray
    test_index: np.ndarray
    meta: DatasetMeta | None
    seed: int

    def __iter__(self) -> Iterator[Any]:
        return iter(
            (
                self.X_train,
                self.y_train,
                self.X_val,
                self.y_val,
                self.X_test,
                self.y_test,
            )
        )


def _allocate(m: int, share: np.ndarray, avail: np.ndarray, minimum: int) -> np.ndarray:
    """Per-class counts summing to `m`: proportional to `share` (largest remainder),
    at least `minimum` and at most `avail` per class."""
    exact = m * share
    alloc = np.floor(exact).astype(int)
    order = np.argsort(-(exact - alloc), kind="stable")
    alloc[order[: m - alloc.sum()]] += 1
    alloc = np.clip(np.maximum(alloc, minimum), 0, avail)
    # Restore the total one row at a time: take from the class most above its
    # proportional share, give to the class most below it (ties broken by class order,
    # so deterministic).
    while alloc.sum() > m:
        excess = np.where(alloc > minimum, alloc - exact, -np.inf)
        alloc[int(np.argmax(excess))] -= 1
    while alloc.sum() < m:
        room = np.where(alloc < avail, exact - alloc, -np.inf)
        if not np.isfinite(room).any():
            break
        alloc[int(np.argmax(room))] += 1
    return alloc


def make_split(
    data: str | Path | tuple[pd.DataFrame, pd.Series],
    n_train: int,
    seed: int,
    *,
    n_val: int | None = None,
    n_test: int | None = None,
    min_minority: int = DEFAULT_MIN_MINORITY,
    data_dir: Path | None = None,
) -> Split:
    """Stratified low-data split with a guaranteed number of rows of every class.

    Each part is stratified: its class counts are the whole table's class shares times
    its size (largest-remainder rounding), except that every class gets at least
    `min_minority` rows in train and in validation (the rows are taken from the most
    over-represented class), and at least one row in test. For binary tasks this is the
    guarantee on the minority class; for multiclass it holds for every class. Rows are
    drawn without overlap from one per-class permutation made by
    `numpy.random.default_rng(seed)`, so a seed always gives the same split.

    Defaults: `n_val = max(n_train // 4, n_classes * min_minority)`;
    `n_test = min(2000, rows left after train and validation)`.

    Args:
        data: A name from `list_datasets()`, or an `(X, y)` pair as returned by
            `load_dataset` (use this for a user CSV).
        n_train: Training rows.
        seed: Seed for the row permutation.
        n_val: Validation rows (default above).
        n_test: Test rows (default above); must fit in the rows left.
        min_minority: Minimum rows of every class in train and in validation.
        data_dir: Folder of the vendored data (for names).

    Returns:
        A `Split`; it unpacks as `X_train, y_train, X_val, y_val, X_test, y_test`.

    Raises:
        ValueError: Sizes do not fit the table, or a class has fewer than
            `2 * min_minority + 1` rows, or `n_train` / `n_val` cannot hold
            `min_minority` rows of every class. The message names the class and its
            count.

    Examples:
        >>> s = make_split("credit-g", 100, seed=0)
        >>> len(s.y_train), len(s.y_val), len(s.y_test), int((s.y_train == 2).sum())
        (100, 25, 875, 30)
    """
    if isinstance(data, tuple):
        X, y = data
        meta = None
        label = "the given (X, y)"
    else:
        X, y, meta = load_dataset(data, data_dir=data_dir)
        label = f"dataset {meta.name!r}"
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
    if min_minority < 0 or n_train < 1:
        raise ValueError(
            f"need n_train >= 1 and min_minority >= 0, got {n_train}, {min_minority}"
        )
    yv = y.to_numpy()
    classes, codes = np.unique(
        yv.astype(str) if yv.dtype == object else yv, return_inverse=True
    )
    counts = np.bincount(codes, minlength=len(classes))
    k, n = len(classes), len(yv)
    share = counts / n
    too_small = [
        (c, int(m))
        for c, m in zip(classes.tolist(), counts, strict=True)
        if m < 2 * min_minority + 1
    ]
    if too_small:
        raise ValueError(
            f"{label}: classes {too_small} have fewer than 2 * min_minority + 1 = "
            f"{2 * min_minority + 1} rows; lower min_minority"
        )
    if n_val is None:
        n_val = max(n_train // 4, k * min_minority)
    for part, size in (("n_train", n_train), ("n_val", n_val)):
        if size < k * min_minority:
            raise ValueError(
                f"{label}: {part}={size} cannot hold min_minority={min_minority} rows "
                "of each "
                f"of {k} classes (needs >= {k * min_minority})"
            )
    left = n - n_train - n_val
    if left < k:
        raise ValueError(
            f"{label}: n_train + n_val = {n_train + n_val} leaves {left} of {n} rows "
            "for the "
            f"test set, fewer than one per class ({k})"
        )
    if n_test is None:
        n_test = min(DEFAULT_MAX_TEST, left)
    if not k <= n_test <= left:
        raise ValueError(
            f"{label}: n_test={n_test} must be between {k} and the {left} rows left"
        )
    a_train = _allocate(n_train, share, counts - min_minority - 1, min_minority)
    a_val = _allocate(n_val, share, counts - a_train - 1, min_minority)
    a_test = _allocate(n_test, share, counts - a_train - a_val, 1)
    if a_train.sum() != n_train or a_val.sum() != n_val or a_test.sum() != n_test:
        raise ValueError(
            f"{label}: cannot fit n_train={n_train}, n_val={n_val}, n_test={n_test} "
            f"with class counts {counts.tolist()}"
        )
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for j in range(k):
        perm = rng.permutation(np.flatnonzero(codes == j))
        cuts = np.cumsum([a_train[j], a_val[j], a_test[j]])
        parts[0].append(perm[: cuts[0]])
        parts[1].append(perm[cuts[0] : cuts[1]])
        parts[2].append(perm[cuts[1] : cuts[2]])
    # Shuffle across classes too, so rows are not grouped by class.
    idx = [rng.permutation(np.concatenate(p)) for p in parts]
    return Split(
        *(part for i in idx for part in (X.iloc[i], y.iloc[i])),
        *idx,
        meta,
        seed,
    )
