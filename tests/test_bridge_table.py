"""`bridge.read_table`, `bridge.write_samples`, `bridge.table_format`."""

from __future__ import annotations

import os

import jax
import numpy as np
import pandas as pd
import pytest

import bridge
import jaxscm


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [1.5, 2.0, np.nan],
            "n": [1, 2, 3],
            "city": ["oslo", "rome", None],
        }
    )


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz", "t.tsv", "t.parquet"])
def test_read_table__reads_each_format_with_typed_columns(tmp_path, name):
    path = tmp_path / name
    df = _frame()
    if name.endswith(".parquet"):
        df.to_parquet(path)
    else:
        df.to_csv(path, sep="\t" if ".tsv" in name else ",", index=False)
    out = bridge.read_table(path)
    assert list(out.columns) == ["x", "n", "city"]
    assert pd.api.types.is_float_dtype(out["x"])
    assert pd.api.types.is_integer_dtype(out["n"])
    assert pd.api.types.is_string_dtype(out["city"])
    assert out["city"].isna().tolist() == [False, False, True]


def test_read_table__missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.csv: no such file"):
        bridge.read_table(tmp_path / "nope.csv")


def test_read_table__a_folder_is_not_a_file(tmp_path):
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(FileNotFoundError, match="a folder, not a file"):
        bridge.read_table(tmp_path / "d.csv")


def test_read_table__empty_file_names_it(tmp_path):
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(ValueError, match=r"e\.csv is empty"):
        bridge.read_table(tmp_path / "e.csv")


def test_read_table__blank_lines_are_no_table(tmp_path):
    (tmp_path / "b.csv").write_text("\n\n")
    with pytest.raises(ValueError, match=r"b\.csv holds no table"):
        bridge.read_table(tmp_path / "b.csv")


def test_read_table__header_without_rows_is_an_error(tmp_path):
    (tmp_path / "h.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match="header but no data rows"):
        bridge.read_table(tmp_path / "h.csv")


def test_read_table__not_a_table_names_file_and_format(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(ValueError, match=r"cannot read .*bad\.parquet as PARQUET"):
        bridge.read_table(tmp_path / "bad.parquet")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x81\n\x00\x9f")
    with pytest.raises(ValueError, match=r"cannot read .*bin\.csv as CSV"):
        bridge.read_table(tmp_path / "bin.csv")


def test_read_table__unknown_suffix_lists_the_formats(tmp_path):
    (tmp_path / "t.xlsx").write_text("a\n1\n")
    with pytest.raises(ValueError, match=r"t\.xlsx: unknown table format; use \.csv"):
        bridge.read_table(tmp_path / "t.xlsx")


def test_table_format__write_accepts_only_csv_and_parquet_in_a_folder(tmp_path):
    assert bridge.table_format(tmp_path / "a.csv", write=True) == "csv"
    assert bridge.table_format(tmp_path / "a.parquet", write=True) == "parquet"
    for name in ("a.tsv", "a.csv.gz", "a.txt", "a.json"):
        with pytest.raises(ValueError, match=r"\.csv or \.parquet"):
            bridge.table_format(tmp_path / name, write=True)
    with pytest.raises(ValueError, match="does not exist"):
        bridge.table_format(tmp_path / "no" / "a.csv", write=True)


def test_write_samples__member_and_bad_arguments(tmp_path):
    model = jaxscm.stack([jaxscm.random_scm(jax.random.key(i), 3) for i in range(2)])
    key = jax.random.key(0)
    m0 = bridge.write_samples(tmp_path / "m0.csv", key, model, 8, member=0)
    m1 = bridge.write_samples(tmp_path / "m1.csv", key, model, 8, member=1)
    mixed = bridge.write_samples(tmp_path / "mix.csv", key, model, 8)
    a, b, mix = (pd.read_csv(p) for p in (m0, m1, mixed))
    assert a.shape == b.shape == mix.shape == (8, 3)
    assert not np.allclose(a.to_numpy(), b.to_numpy())
    with pytest.raises(ValueError, match=r"member must be in \[0, 2\)"):
        bridge.write_samples(tmp_path / "x.csv", key, model, 5, member=2)
    with pytest.raises(ValueError, match="must be >= 1"):
        bridge.write_samples(tmp_path / "x.csv", key, model, 0)
    assert sorted(os.listdir(tmp_path)) == ["m0.csv", "m1.csv", "mix.csv"]


def test_write_samples__csv_and_parquet_round_trip_through_read_table(tmp_path):
    model = jaxscm.random_scm(jax.random.key(0), 3)
    for name in ("s.csv", "s.parquet"):
        path = bridge.write_samples(
            tmp_path / name, jax.random.key(1), model, 25, chunk=7
        )
        df = bridge.read_table(path)
        assert df.shape == (25, 3)
        assert np.isfinite(df.to_numpy(dtype=float)).all()
    assert sorted(os.listdir(tmp_path)) == ["s.csv", "s.parquet"]


def test_write_samples__same_key_same_file_and_chunks_join_seamlessly(tmp_path):
    model = jaxscm.random_scm(jax.random.key(0), 3)
    a = bridge.write_samples(tmp_path / "a.csv", jax.random.key(1), model, 10, chunk=3)
    b = bridge.write_samples(tmp_path / "b.csv", jax.random.key(1), model, 10, chunk=3)
    assert a.read_text() == b.read_text()
    assert a.read_text().count("\n") == 11  # one header, ten rows
