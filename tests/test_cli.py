"""The `causalmixft` command line: bad input is one line naming it, exit status 2.

None of these reach torch or tabpfn: the input is checked before the model loads.
"""

from __future__ import annotations

import pandas as pd
import pytest

from finetune._run import holdout, split_target
from finetune.cli import SUBCOMMANDS, build_parser, main


def _csv(tmp_path, name="data.csv"):
    path = tmp_path / name
    pd.DataFrame(
        {"a": [0.1, 0.5, 0.9, 0.3] * 3, "label": ["x", "y", "x", "y"] * 3}
    ).to_csv(path, index=False)
    return path


def test_cli__every_subcommand_lives_in_the_cli_package():
    assert set(SUBCOMMANDS) == {
        "demo",
        "bench",
        "fit-scm",
        "sample",
        "pretrain",
        "finetune",
        "report",
        "augment",
    }
    assert {m for m, _ in SUBCOMMANDS.values()} == {
        "finetune.cli.demo",
        "finetune.cli.bench",
        "finetune.cli.fit_scm",
        "finetune.cli.sample",
        "finetune.cli.pretrain",
        "finetune.cli.finetune",
        "finetune.cli.report",
        "finetune.cli.augment",
    }
    args = build_parser().parse_args(["demo", "--seeds", "2"])
    assert (args.dataset, args.seeds, args.n_train) == ("credit-g", 2, 128)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["finetune", "{tmp}/nope.csv", "--target", "label"], "nope.csv: no such file"),
        (["finetune", "{tmp}/data.csv", "--target", "y"], "target column 'y' is not"),
        (
            ["finetune", "{tmp}/data.csv", "--target", "label", "--test-fraction", "2"],
            "test fraction must be in (0, 1)",
        ),
        (["finetune", "{tmp}/empty.csv", "--target", "label"], "empty.csv is empty"),
        (["finetune", "{tmp}/data.json", "--target", "label"], "unknown table format"),
        (["fit-scm", "{tmp}/empty.csv", "--target", "label"], "empty.csv is empty"),
    ],
)
def test_cli__bad_input_is_one_line_and_exit_status_2(tmp_path, capsys, argv, message):
    _csv(tmp_path)
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "data.json").write_text("{}")
    before = sorted(p.name for p in tmp_path.iterdir())
    out_flag = ["-o", str(tmp_path / "out")]
    rc = main([a.format(tmp=tmp_path) for a in argv] + out_flag)
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err
    assert err.count("\n") == 1
    assert err.startswith(f"causalmixft {argv[0]}: error: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def _augment_csv(tmp_path):
    from _augment_data import planted

    X, y = planted(60)
    path = tmp_path / "t.csv"
    X.assign(y=y)[["a", "y", "b", "k", "c"]].to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--target", "label"], "target column 'label' is not in"),
        (["--target", "y", "--classes", "yes=lots"], "--classes 'yes=lots'"),
        (["--target", "y", "--classes", "maybe=1"], "class 'maybe' is not a training"),
        (["--target", "a"], "target column 'a' has"),  # a numeric target: 60 classes
    ],
)
def test_augment__bad_input_is_one_line_exit_2_nothing_written(
    tmp_path, capsys, extra, message
):
    path = _augment_csv(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = ["augment", str(path), "--generator", "mixup", "-n", "10"]
    rc = main([*argv, *extra, "-o", str(tmp_path / "out.csv")])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err
    assert err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_augment__writes_the_table_columns_in_order_with_the_asked_classes(
    tmp_path, capsys
):
    path = _augment_csv(tmp_path)
    out = tmp_path / "out.csv"
    argv = ["augment", str(path), "--target", "y", "--generator", "smote"]
    rc = main([*argv, "-n", "30", "-o", str(out), "--classes", "yes=2,no=1"])
    assert rc == 0
    assert "wrote 30 rows x 5 columns from smote" in capsys.readouterr().out
    df = pd.read_csv(out)
    assert list(df.columns) == ["a", "y", "b", "k", "c"]
    assert df["y"].value_counts().to_dict() == {"yes": 20, "no": 10}
    assert set(df["c"]) <= {"high", "low"}
    rc = main([*argv, "-n", "30", "-o", str(tmp_path / "b.csv"), "--seed", "0"])
    assert rc == 0
    again = pd.read_csv(tmp_path / "b.csv")
    main([*argv, "-n", "30", "-o", str(tmp_path / "c.csv"), "--seed", "0"])
    pd.testing.assert_frame_equal(again, pd.read_csv(tmp_path / "c.csv"))


def test_split_target__lists_the_columns_and_refuses_missing_labels():
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": ["p", None, "q"]})
    with pytest.raises(ValueError, match=r"'z' is not in t\.csv; its columns are"):
        split_target(df, "z", source="t.csv")
    with pytest.raises(ValueError, match="1 missing values"):
        split_target(df, "y", source="t.csv")
    with pytest.raises(ValueError, match="no feature columns"):
        split_target(df[["y"]].fillna("p"), "y")
    X, y = split_target(df.fillna({"y": "p"}), "y")
    assert list(X.columns) == ["a"]
    assert y.name == "y"


def test_holdout__is_stratified_and_seeded():
    X = pd.DataFrame({"a": range(20)})
    y = pd.Series(["p"] * 10 + ["q"] * 10, name="y")
    X_tr, y_tr, X_te, y_te = holdout(X, y, 0.3, seed=0)
    assert len(y_tr) + len(y_te) == 20
    assert y_te.value_counts().to_dict() == {"p": 3, "q": 3}
    assert set(X_tr["a"]).isdisjoint(X_te["a"])
    assert holdout(X, y, 0.3, seed=0)[3].index.tolist() == y_te.index.tolist()
