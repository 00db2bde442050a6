"""Tests for the offline benchmark dataset suite (benchmarks.datasets)."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.datasets import (
    DatasetIntegrityError,
    list_datasets,
    load_dataset,
    make_split,
    read_manifest,
    recipe,
)
from benchmarks.datasets import _load as load_mod
from benchmarks.datasets._specs import PACKAGES, ROW_CAP, SOURCE_SHA256, SPECS

MANIFEST = read_manifest()
NAMES = list(MANIFEST["datasets"])
CREDIT = ["credit-g", "credit-approval", "australian", "default_islr", "credit_data",
          "lending_club", "creditcard_aer", "hmda"]  # fmt: skip


# ---------------------------------------------------------------- suite and manifest


def test_public_api__all_snapshot():
    import benchmarks.datasets as ds

    assert ds.__all__ == [
        "DatasetIntegrityError",
        "DatasetMeta",
        "Split",
        "list_datasets",
        "load_dataset",
        "make_split",
        "read_manifest",
    ]


def test_list_datasets__paper33_is_33_unique_names():
    names = list_datasets("paper33")
    assert len(names) == 33
    assert len(set(names)) == 33
    assert names == NAMES


def test_list_datasets__tags_select_the_documented_subsets():
    assert list_datasets("adult") == ["adult"]
    assert list_datasets("credit") == CREDIT
    for name in NAMES:
        e = MANIFEST["datasets"][name]
        assert ("multiclass" in e["tags"]) == (e["n_classes"] > 2), name
        imbalanced = e["n_classes"] == 2 and e["minority_share"] < 0.20
        assert ("imbalanced" in e["tags"]) == imbalanced, name
    assert len(list_datasets("imbalanced")) == 11
    assert len(list_datasets("multiclass")) == 7


def test_list_datasets__unknown_tag_names_the_known_tags():
    with pytest.raises(ValueError, match="unknown tag 'credits'.*credit"):
        list_datasets("credits")


@pytest.mark.parametrize("name", NAMES)
def test_load_dataset__matches_manifest(name):
    e = MANIFEST["datasets"][name]
    path = load_mod.DATA_DIR / e["file"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == e["sha256"]
    X, y, meta = load_dataset(name)
    assert len(X) == len(y) == e["rows"]
    assert list(X.columns) == e["columns"]
    assert X.shape[1] == e["features"]
    assert y.name == e["target"]
    assert e["target"] not in X.columns
    counts = y.value_counts().sort_index()
    assert [int(v) if e["target_dtype"] == "int" else v for v in counts.index] == e[
        "classes"
    ]
    assert counts.tolist() == e["class_counts"]
    assert y.nunique() == e["n_classes"] == meta.n_classes
    assert counts.min() / len(y) == pytest.approx(e["minority_share"], abs=1e-6)
    assert int(X.isna().sum().sum()) == e["missing_cells"]
    for col in X.columns:
        expected = "category" if col in e["categorical"] else "float64"
        assert str(X[col].dtype) == expected, col
    assert meta.sha256 == e["sha256"]
    assert meta.positive_class == e["positive_class"]
    if e["n_classes"] == 2:
        assert e["positive_class"] in e["classes"]
    else:
        assert e["positive_class"] is None


def test_manifest__records_provenance_for_every_dataset():
    for name, e in MANIFEST["datasets"].items():
        src = e["source"]
        assert src["version"] == PACKAGES[src["package"]]["version"], name
        assert src["members"], name
        for member in src["members"]:
            assert member["sha256"] == SOURCE_SHA256[member["path"]]
        assert all(e[k] for k in ("licence", "cleaning", "citation")), name
        assert len(e["sha256"]) == 64
    subsampled = sorted(n for n, e in MANIFEST["datasets"].items() if e["subsample"])
    assert subsampled == ["adult", "magic", "sylva"]
    assert MANIFEST["datasets"]["adult"]["subsample"]["original_rows"] == 48842
    assert all(MANIFEST["datasets"][n]["rows"] == ROW_CAP for n in subsampled)
    assert MANIFEST["datasets"]["creditcard_aer"]["dropped_columns"] == [
        "rownames",
        "share",
        "expenditure",
    ]


def test_recipe__specs_and_manifest_list_the_same_datasets():
    assert [s.name for s in SPECS] == NAMES
    assert {m for s in SPECS for m in s.members} == set(SOURCE_SHA256)


def test_stratified_subsample__deterministic_exact_size_and_proportional():
    y = pd.Series(np.repeat(["a", "b", "c"], [700, 250, 50]))
    first = recipe.stratified_subsample(y, 100, seed=0)
    assert np.array_equal(first, recipe.stratified_subsample(y, 100, seed=0))
    assert not np.array_equal(first, recipe.stratified_subsample(y, 100, seed=1))
    assert len(first) == len(set(first)) == 100
    assert y.iloc[first].value_counts().to_dict() == {"a": 70, "b": 25, "c": 5}


def test_to_csv_gz__byte_identical_for_identical_frames():
    df = pd.DataFrame({"x": [1.5, np.nan], "c": ["u", "v"]})
    blob = recipe.to_csv_gz(df)
    assert blob == recipe.to_csv_gz(df.copy())
    assert gzip.decompress(blob).decode() == "x,c\n1.5,u\n,v\n"


# ---------------------------------------------------------------- integrity errors


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    """A private copy of the manifest and two small files, safe to corrupt."""
    for f in ("manifest.json", "tic-tac-toe.csv.gz", "breast-w.csv.gz"):
        shutil.copy(load_mod.DATA_DIR / f, tmp_path / f)
    return tmp_path


def test_load_dataset__intact_copy_loads(data_copy):
    X, _, meta = load_dataset("tic-tac-toe", data_dir=data_copy)
    assert X.shape == (958, 9)
    assert meta.path == data_copy / "tic-tac-toe.csv.gz"


def test_load_dataset__corrupted_file_names_file_and_rebuild(data_copy):
    path = data_copy / "tic-tac-toe.csv.gz"
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(
        DatasetIntegrityError,
        match=r"tic-tac-toe\.csv\.gz.*python -m benchmarks\.datasets\.recipe",
    ):
        load_dataset("tic-tac-toe", data_dir=data_copy)


def test_load_dataset__missing_file_names_file_and_rebuild(data_copy):
    (data_copy / "breast-w.csv.gz").unlink()
    with pytest.raises(
        FileNotFoundError,
        match=r"breast-w\.csv\.gz.*missing.*benchmarks\.datasets\.recipe",
    ):
        load_dataset("breast-w", data_dir=data_copy)


def test_load_dataset__missing_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"manifest\.json is missing"):
        load_dataset("adult", data_dir=tmp_path)


def test_load_dataset__manifest_class_counts_are_checked(data_copy):
    manifest = json.loads((data_copy / "manifest.json").read_text())
    manifest["datasets"]["breast-w"]["class_counts"] = [457, 242]
    (data_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetIntegrityError, match="class counts differ"):
        load_dataset("breast-w", data_dir=data_copy)


def test_load_dataset__unknown_name_lists_vendored_names():
    with pytest.raises(FileNotFoundError, match="neither a vendored dataset.*credit-g"):
        load_dataset("no_such_dataset")


# ---------------------------------------------------------------- user CSV files


@pytest.fixture
def user_csv(tmp_path: Path) -> Path:
    df = pd.DataFrame({
        "age": [20, 35, 50, 41, 29, 33],
        "city": ["a", "b", "a", "c", None, "b"],
        "flag": [True, False, True, True, False, False],
        "label": ["yes", "no", "no", "no", "yes", "no"],
    })  # fmt: skip
    path = tmp_path / "mine.csv.gz"
    df.to_csv(path, index=False)
    return path


def test_load_dataset__user_csv_infers_categoricals(user_csv):
    X, y, meta = load_dataset(user_csv, target="label")
    assert list(X.columns) == ["age", "city", "flag"]
    assert str(X["age"].dtype) == "float64"
    assert str(X["city"].dtype) == str(X["flag"].dtype) == "category"
    assert int(X["city"].isna().sum()) == 1
    assert y.tolist() == ["yes", "no", "no", "no", "yes", "no"]
    assert meta.categorical == ("city", "flag")
    assert meta.positive_class == "yes"  # the minority class by default
    assert meta.name == "mine"
    assert meta.n_classes == 2


def test_load_dataset__user_csv_missing_target_lists_columns(user_csv):
    with pytest.raises(
        KeyError, match=r"'target_x'.*\['age', 'city', 'flag', 'label'\]"
    ):
        load_dataset(user_csv, target="target_x")


def test_load_dataset__user_csv_without_target_argument_is_an_error(user_csv):
    with pytest.raises(ValueError, match="needs target="):
        load_dataset(user_csv)


def test_load_dataset__user_csv_single_class_is_an_error(tmp_path):
    path = tmp_path / "one.csv"
    pd.DataFrame({"x": [1, 2, 3], "y": [1, 1, 1]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="single class"):
        load_dataset(path, target="y")


def test_make_split__user_table_pair(user_csv):
    X, y, _ = load_dataset(user_csv, target="label")
    X2 = pd.concat([X] * 5, ignore_index=True)
    y2 = pd.concat([y] * 5, ignore_index=True)
    s = make_split((X2, y2), 10, seed=3, min_minority=2)
    assert (len(s.y_train), len(s.y_val)) == (10, 4)
    assert (s.y_train == "yes").sum() >= 2
    assert (s.y_val == "yes").sum() >= 2


# ---------------------------------------------------------------- splits


def _parts(s):
    return [s.train_index, s.val_index, s.test_index]


@pytest.mark.parametrize("name", NAMES)
def test_make_split__disjoint_sized_and_every_class_present(name):
    s = make_split(name, 64, seed=0)
    tr, va, te = _parts(s)
    assert (
        len(np.intersect1d(tr, va))
        == len(np.intersect1d(tr, te))
        == len(np.intersect1d(va, te))
        == 0
    )
    assert len(tr) == 64
    assert len(va) == max(16, 2 * s.meta.n_classes)
    assert len(te) == min(2000, s.meta.rows - len(tr) - len(va))
    for part in (s.y_train, s.y_val):
        assert (
            part.value_counts().reindex(list(s.meta.classes), fill_value=0).min() >= 2
        )
    assert s.y_test.nunique() == s.meta.n_classes
    assert s.X_train.index.equals(s.y_train.index)


def test_make_split__same_seed_same_rows_other_seed_other_rows():
    a, b, c = (make_split("churn", 128, seed=s) for s in (7, 7, 8))
    for pa, pb in zip(_parts(a), _parts(b), strict=True):
        assert np.array_equal(pa, pb)
    assert not np.array_equal(a.train_index, c.train_index)
    assert a.X_train.equals(b.X_train)


def test_make_split__stratified_class_counts():
    s = make_split("credit-g", 100, seed=0, n_val=40, n_test=500)
    assert int((s.y_train == 2).sum()) == 30  # 30 % bad credit
    assert int((s.y_val == 2).sum()) == 12
    assert int((s.y_test == 2).sum()) == 150


def test_make_split__minimum_minority_rows_are_guaranteed():
    # default_islr has 3.3 % positives: proportional would give 2 of 64.
    s = make_split("default_islr", 64, seed=0, min_minority=5)
    assert int((s.y_train == "Yes").sum()) == 5
    assert int((s.y_val == "Yes").sum()) == 5
    assert len(s.y_train) == 64
    assert len(s.y_val) == 16


def test_make_split__unpacks_as_six_parts():
    X_tr, y_tr, X_va, y_va, X_te, y_te = make_split("tic-tac-toe", 50, seed=1)
    assert (len(X_tr), len(y_tr), len(X_va), len(y_va)) == (50, 50, 12, 12)
    assert len(X_te) == len(y_te) == 958 - 62


def test_make_split__too_few_minority_rows_names_the_class():
    # car's smallest class ('vgood') has 65 rows.
    with pytest.raises(ValueError, match=r"\('vgood', 65\).*lower min_minority"):
        make_split("car", 200, seed=0, min_minority=40)


def test_make_split__n_train_too_small_for_minimum_per_class():
    with pytest.raises(
        ValueError,
        match=r"n_train=10 cannot hold min_minority=2 rows of each of 7 classes",
    ):
        make_split("segment", 10, seed=0)


def test_make_split__sizes_larger_than_table_are_an_error():
    with pytest.raises(ValueError, match="leaves"):
        make_split("tic-tac-toe", 900, seed=0)


def test_notice__attributes_every_vendored_file():
    notice = (load_mod.DATA_DIR / "NOTICE").read_text()
    assert notice == recipe.notice_text(MANIFEST)
    for e in MANIFEST["datasets"].values():
        assert e["file"] in notice
