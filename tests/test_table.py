"""Schema inference, encoding and the errors for bad tables (jaxscm.fitting._table)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bridge
from jaxscm import Column
from jaxscm.fitting._table import SchemaError, encode, infer_schema, prepare


def _table(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "num": rng.normal(size=n),
            "count": rng.integers(0, 200, n),
            "flag": rng.integers(0, 2, n),
            "city": rng.choice(["paris", "rome", "oslo"], n),
            "ok": rng.random(n) > 0.5,
            "y": rng.choice(["no", "yes"], n),
        }
    )


def test_infer_schema__kinds_follow_the_documented_rule():
    cols = {c.name: c for c in infer_schema(_table(), target="y")}
    assert cols["num"].kind == "numeric"
    assert cols["count"].kind == "integer"  # whole numbers, > 10 distinct values
    assert cols["flag"] == Column("flag", "categorical", ("0", "1"))
    assert cols["city"] == Column("city", "categorical", ("oslo", "paris", "rome"))
    assert cols["ok"].categories == ("False", "True")
    assert cols["y"].is_target
    assert cols["y"].kind == "categorical"
    assert sum(c.is_target for c in cols.values()) == 1


def test_infer_schema__overrides_win_and_integer_target_is_categorical():
    df = _table()
    cols = {
        c.name: c for c in infer_schema(df, target="flag", kinds={"count": "numeric"})
    }
    assert cols["count"].kind == "numeric"
    assert cols["flag"].kind == "categorical"
    assert cols["flag"].is_target
    assert infer_schema(df, kinds={"flag": "integer"})[2].kind == "integer"


@pytest.mark.parametrize(
    ("frame", "target", "kinds", "column", "fix"),
    [
        (lambda d: d, "label", None, "label", "not in the table"),
        (lambda d: d.assign(y="yes"), "y", None, "'y'", "two classes"),
        (lambda d: d.assign(num=np.nan), "y", None, "'num'", "drop it or fill it in"),
        (lambda d: d.assign(num=3.0), "y", None, "'num'", "drop it"),
        (
            lambda d: d.assign(when=pd.Timestamp("2020-01-01")),
            "y",
            None,
            "'when'",
            "convert it to numbers",
        ),
        (
            lambda d: d.assign(z=np.ones(len(d)) * (1 + 1j)),
            "y",
            None,
            "'z'",
            "unsupported",
        ),
        (
            lambda d: d.assign(city=[f"c{i}" for i in range(len(d))]),
            "y",
            None,
            "'city'",
            "raise max_categories",
        ),
        (
            lambda d: d.rename(columns={"count": "num"}),
            "y",
            None,
            "'num'",
            "appears more",
        ),
        (lambda d: d, "y", {"missing": "numeric"}, "'missing'", "not in the table"),
        (lambda d: d, "y", {"num": "text"}, "'num'", "kind must be one of"),
        (lambda d: d, "y", {"city": "numeric"}, "'city'", "declare it categorical"),
        (lambda d: d, "y", {"num": "integer"}, "'num'", "declare it 'numeric'"),
        (lambda d: d, "y", {"y": "numeric"}, "'y'", "must be categorical"),
    ],
    ids=[
        "missing-target",
        "single-class-target",
        "all-nan",
        "constant",
        "datetime",
        "complex",
        "too-many-categories",
        "duplicate-names",
        "override-unknown-column",
        "override-unknown-kind",
        "text-as-numeric",
        "float-as-integer",
        "numeric-target",
    ],
)
def test_infer_schema__bad_input_names_the_column_and_fix(
    frame, target, kinds, column, fix
):
    df = frame(_table())
    with pytest.raises(SchemaError, match=fix) as err:
        infer_schema(df, target=target, kinds=kinds, max_categories=20)
    assert column.strip("'") in str(err.value)


def test_encode_decode__round_trip_labels():
    df = _table()
    cols = infer_schema(df, target="y")
    x = encode(df, cols)
    assert x.dtype == np.float64
    assert x.shape == df.shape
    back = bridge.to_frame(x, cols)  # the decoder of the schema's codes
    assert back["city"].astype(str).tolist() == df["city"].tolist()
    assert back["ok"].astype(str).tolist() == df["ok"].astype(str).tolist()
    assert back["count"].tolist() == df["count"].tolist()
    np.testing.assert_allclose(back["num"], df["num"])


def test_encode__unknown_label_names_the_column():
    cols = (Column("c", "categorical", ("a", "b")),)
    with pytest.raises(SchemaError, match="'c'.*'z'"):
        encode(pd.DataFrame({"c": ["a", "z"]}), cols)


def test_prepare__imputes_records_missing_rates_and_drops_missing_targets():
    df = _table()
    df.loc[[0, 1, 2, 3], "num"] = np.nan
    df.loc[[5], "city"] = None
    df.loc[[7, 8], "y"] = None
    prep = prepare(df, "y")
    assert not np.isnan(prep.codes).any()
    assert prep.dropped_rows == 2
    assert prep.codes.shape[0] == len(df) - 2
    assert prep.missing_rate["num"] == pytest.approx(4 / len(df))
    assert prep.missing_rate["city"] == pytest.approx(1 / len(df))
    j = [c.name for c in prep.columns].index("num")
    assert prep.codes[0, j] == pytest.approx(np.nanmedian(df["num"].to_numpy()))


def test_infer_schema__category_dtype_object_numbers_and_float_codes():
    df = pd.DataFrame(
        {
            "grade": pd.Categorical(["b", "a", "c", "a"]),
            "mixed": pd.Series([1, 2.5, 3, 4], dtype=object),  # numbers as objects
            "code": [1.0, 2.0, 1.0, np.nan],  # whole floats with a gap: categorical
        }
    )
    cols = {c.name: c for c in infer_schema(df)}
    assert cols["grade"].categories == ("a", "b", "c")
    assert cols["mixed"].kind == "numeric"
    assert cols["code"] == Column("code", "categorical", ("1", "2"))
    x = encode(df, tuple(cols.values()))
    assert np.isnan(x[3, 2])
    assert x[0, 2] == 0.0
