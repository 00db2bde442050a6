"""The one schema: `Column`'s label <-> code codec and the project's label order."""

from __future__ import annotations

import numpy as np
import pytest

from jaxscm import Column, SchemaError
from jaxscm._schema import label, ordered_labels


def test_label__one_form_for_whole_numbers_bools_and_strings():
    assert label(1) == label(1.0) == label(np.int64(1)) == label("1") == "1"
    assert label(np.float32(2.5)) == "2.5"
    assert label(True) == label(np.bool_(True)) == "True"
    assert label("x") == "x"


def test_ordered_labels__numbers_by_value_text_by_string():
    assert ordered_labels([10, 2, 1, 2.0]) == ("1", "2", "10")
    assert ordered_labels(["10", "2", "b", "a"]) == ("10", "2", "a", "b")
    assert ordered_labels([True, False]) == ("False", "True")
    assert ordered_labels(["b", None, float("nan"), "a"]) == ("a", "b")
    # the order of np.unique for number and string labels (sklearn's classes_)
    for values in ([3, 1, 10, 2], ["z", "10", "2"], [0.5, -1.0, 10.0]):
        assert ordered_labels(values) == tuple(label(v) for v in np.unique(values))


def test_column__code_of_and_labels_of_round_trip():
    col = Column("c", "categorical", ("1", "10", "x"))
    codes = col.code_of([1.0, "x", None, 10, "1"])
    np.testing.assert_array_equal(codes, [0.0, 2.0, np.nan, 1.0, 0.0])
    assert col.labels_of(codes).tolist() == ["1", "x", None, "10", "1"]
    assert col.code_of(col.labels_of(np.arange(3.0))).tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(SchemaError, match=r"column 'c': label 'y' is not among"):
        col.code_of(["y"])
    assert np.isnan(col.code_of(["y"], unknown="missing")).all()
    num = Column("a")
    np.testing.assert_array_equal(num.code_of([1, 2.5, None]), [1.0, 2.5, np.nan])


def test_column__check_codes_refuses_what_is_not_a_code():
    col = Column("c", "categorical", ("a", "b"))
    assert col.check_codes(np.array([1.0, np.nan, 0.0])).tolist() == [1, -1, 0]
    for bad in ([2.0], [-1.0], [0.5]):
        with pytest.raises(ValueError, match="'c'.*not a category code"):
            col.check_codes(np.array(bad))
        with pytest.raises(ValueError, match="'c'.*not a category code"):
            col.labels_of(np.array(bad))
