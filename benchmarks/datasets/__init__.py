"""Offline benchmark suite: 33 real classification tables vendored as csv.gz + manifest.

    from benchmarks.datasets import load_dataset, list_datasets, make_split

    X, y, meta = load_dataset("adult")                # vendored, sha256-checked
    X, y, meta = load_dataset("my.csv", target="y")   # any user CSV
    s = make_split("churn", n_train=128, seed=0)      # stratified low-data split

See README.md in this folder for the sources, cleaning and the table of datasets;
rebuild the files with `python -m benchmarks.datasets.recipe`.
"""

from benchmarks.datasets._load import (
    DatasetIntegrityError,
    DatasetMeta,
    list_datasets,
    load_dataset,
    read_manifest,
)
from benchmarks.datasets._split import Split, make_split

__all__ = [
    "DatasetIntegrityError",
    "DatasetMeta",
    "Split",
    "list_datasets",
    "load_dataset",
    "make_split",
    "read_manifest",
]
