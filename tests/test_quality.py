"""The synthetic-data quality report: metrics on hand-computed cases, files, CLI."""

from __future__ import annotations

import json
import re
import types

import numpy as np
import pandas as pd
import pytest

from finetune import QualityReport, quality_report, write_report
from finetune import _quality_metrics as qm
from finetune.cli import main
from finetune.quality import split_holdout
from jaxscm import Column, FitInfo


def _table(n: int, seed: int = 0) -> pd.DataFrame:
    """Two correlated numbers, a category tied to them, a binary target."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    z = x + 0.5 * rng.normal(size=n)
    c = np.where(x + rng.normal(size=n) > 0, "hi", "lo")
    y = np.where(x + z + 0.5 * rng.normal(size=n) > 0.8, "yes", "no")
    return pd.DataFrame({"x": x, "z": z, "c": c, "y": y})


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return _table(900)


def _col(name, kind, real, synthetic, labels=()):
    return qm.Encoded(
        name,
        kind,
        tuple(labels),
        {"real": np.asarray(real), "synthetic": np.asarray(synthetic)},
    )


def test_quality_report__identical_tables_score_perfectly(data):
    real = data.iloc[:300]
    r = quality_report(real, real.sample(frac=1.0, random_state=1), target="y")
    assert isinstance(r, QualityReport)
    assert 0.4 <= r.detection_auc_lr <= 0.6
    assert 0.4 <= r.detection_auc_hgb <= 0.6
    assert r.detection_score_lr == pytest.approx(1.0)
    assert r.column_shapes == 1.0
    assert r.column_pair_trends == 1.0
    assert {c.score for c in r.columns} == {1.0}
    assert r.exact_copy_share == 1.0
    assert r.dcr_median == 0.0
    assert r.minority_share_drift == 0.0
    assert r.tstr_auc is None
    assert "no holdout" in r.utility_note


def test_quality_report__numbers_compare_at_float32_precision():
    # Real grid values in float64 and the same values drawn in float32 (what the SCM
    # samples) are the same table; compared in float64, their last bits alone told
    # them apart (HGB detection 0.97 on a grid column, measured).
    rng = np.random.default_rng(0)
    grid = rng.choice(np.arange(1, 40) * 0.35, size=(400, 2))
    real = pd.DataFrame(grid[:200], columns=["a", "b"])
    syn = pd.DataFrame(grid[200:].astype(np.float32), columns=["a", "b"])
    assert (real["a"].to_numpy() != real["a"].to_numpy(np.float32)).any()
    r = quality_report(real, syn)
    assert r.detection_auc_hgb < 0.65


def test_quality_report__disjoint_supports_are_detected(data):
    real = data.iloc[:300]
    syn = real.assign(x=real["x"] + 100.0, z=real["z"] - 100.0, c="elsewhere")
    r = quality_report(real, syn)
    assert r.detection_auc_lr > 0.95
    assert r.detection_auc_hgb > 0.95
    assert r.detection_score_hgb < 0.1
    shapes = {c.name: c.score for c in r.columns}
    assert shapes["x"] == 0.0
    assert shapes["z"] == 0.0
    assert shapes["c"] == 0.0
    assert r.exact_copy_share == 0.0
    assert r.dcr_median >= 0.75  # three of four columns differ completely


def test_metrics__hand_computed_values():
    # KS: the ECDFs of {1.5..4.5} and {3.5..6.5} differ by at most 0.5.
    assert (
        qm.ks_complement(np.array([1.5, 2.5, 3.5, 4.5]), np.array([3.5, 4.5, 5.5, 6.5]))
        == 0.5
    )
    assert qm.ks_complement(np.array([1.0, np.nan]), np.array([1.0])) == 1.0
    # TV: shares (.5, .5, 0) vs (.25, .25, .5) -> 1 - 0.5 * (.25 + .25 + .5).
    assert qm.tv_complement(np.array([0, 0, 1, 1]), np.array([0, 1, 2, 2]), 3) == 0.5
    assert qm.tv_complement(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 2) == 0.75
    # Pearson 1 vs 0.8 -> 1 - 0.2 / 2; 1 vs -1 -> 0.
    x = np.array([1.5, 2.5, 3.5, 4.5])
    score, rho_r, rho_s = qm.correlation_similarity(
        (x, x), (x, np.array([1.5, 3.5, 2.5, 4.5]))
    )
    assert (rho_r, rho_s) == (pytest.approx(1.0), pytest.approx(0.8))
    assert score == pytest.approx(0.9)
    assert qm.correlation_similarity((x, x), (x, x[::-1]))[0] == pytest.approx(0.0)
    # Contingency: {pu: .5, qv: .5} vs {pu: .25, pv: .25, qv: .5} -> 1 - 0.25.
    a, b = np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1])
    assert (
        qm.contingency_similarity((a, b), (a, np.array([0, 1, 1, 1])), (2, 2)) == 0.75
    )


def test_metrics__mixed_pair_bins_are_open_ended():
    # 10 equal-width bins over the real 0..9: one value per bin; the synthetic values
    # 100..109 all fall in the last (open) bin. Real cells (i, a|b) hold .1 each,
    # synthetic (9, a) and (9, b) .5 each: TV = 0.5 * (.5 + .4 + .4 + .5) = 0.9.
    real = np.arange(10) + 0.5
    col = _col("x", "numeric", real, real + 100)
    binned, k = qm.discretise(col)
    assert k == 10
    assert binned["real"].tolist() == list(range(10))
    assert set(binned["synthetic"].tolist()) == {9}
    c = np.array([0] * 5 + [1] * 5)
    score = qm.contingency_similarity(
        (binned["real"], c), (binned["synthetic"], c), (10, 2)
    )
    assert score == pytest.approx(0.1)


def test_quality_report__pair_metrics_follow_the_kinds():
    real = pd.DataFrame(
        {"x": [0.5, 1.5, 2.5, 3.5], "z": [1.5, 2.5, 3.5, 4.5], "c": list("ppqq")}
    )
    syn = pd.DataFrame(
        {"c": list("pqqq"), "x": [0.5, 1.5, 2.5, 3.5], "z": [4.5, 3.5, 2.5, 1.5]}
    )
    r = quality_report(real, syn, folds=2)
    pairs = {(p.a, p.b): p for p in r.pairs}
    assert pairs["x", "z"].metric == "CorrelationSimilarity"
    assert pairs["x", "z"].score == pytest.approx(0.0)
    assert pairs["x", "c"].metric == "ContingencySimilarity"
    shapes = {c.name: (c.metric, c.score) for c in r.columns}
    assert shapes["c"] == ("TVComplement", 0.75)
    assert shapes["x"] == ("KSComplement", 1.0)
    names, m = r.pair_matrix()
    assert names == ["x", "z", "c"]
    assert np.isnan(m[0, 0])
    assert m[0, 1] == m[1, 0]


def test_dcr__is_the_gower_distance_to_the_closest_row():
    cols = [
        qm.Encoded(
            "x",
            "numeric",
            (),
            {"synthetic": np.array([0.25, np.nan]), "real": np.array([0.0, 1.0])},
        ),
        qm.Encoded(
            "c",
            "categorical",
            ("a", "b"),
            {"synthetic": np.array([1, 0]), "real": np.array([0, 1])},
        ),
    ]
    # row 0: to (0, a): (.25 + 1) / 2, to (1, b): (.75 + 0) / 2;
    # row 1: NaN vs a number = 1.
    assert qm.dcr(cols, "synthetic", "real").tolist() == [0.375, 0.5]


def test_dcr__matches_a_row_by_row_computation():
    rng = np.random.default_rng(1)
    xq, xr = rng.normal(size=40), rng.normal(size=30)
    xq[[0, 5]], xr[[3]] = np.nan, np.nan
    kq, kr = rng.integers(-1, 3, 40), rng.integers(-1, 3, 30)
    const_q, const_r = rng.choice([2.0, 3.0], 40), np.full(30, 2.0)
    cols = [
        qm.Encoded("x", "numeric", (), {"q": xq, "r": xr}),
        qm.Encoded("k", "categorical", ("a", "b", "c"), {"q": kq, "r": kr}),
        qm.Encoded("s", "numeric", (), {"q": const_q, "r": const_r}),
    ]
    span = np.nanmax(xr) - np.nanmin(xr)

    def cell(a, b, scale):
        if np.isnan(a) or np.isnan(b):
            return 0.0 if np.isnan(a) and np.isnan(b) else 1.0
        return min(abs(a - b) / scale, 1.0) if scale else float(a != b)

    want = [
        min(
            (
                cell(xq[i], xr[j], span)
                + (kq[i] != kr[j])
                + cell(const_q[i], const_r[j], 0)
            )
            / 3
            for j in range(30)
        )
        for i in range(40)
    ]
    np.testing.assert_allclose(qm.dcr(cols, "q", "r"), want, rtol=1e-5, atol=1e-6)


def test_quality_report__exact_copies_and_holdout_baseline(data):
    real, hold = data.iloc[:200], data.iloc[200:400]
    r = quality_report(real, real.iloc[::-1], target="y", holdout=hold)
    assert r.exact_copy_share == 1.0
    assert r.holdout_exact_copy_share == 0.0
    assert r.dcr_holdout_median > 0.0
    assert r.dcr_holdout_p5 <= r.dcr_holdout_median


def test_quality_report__utility_tracks_the_information_in_the_rows(data):
    real, hold, other = data.iloc[:300], data.iloc[300:600], data.iloc[600:900]
    r = quality_report(real, other, target="y", holdout=hold)
    assert r.trtr_auc > 0.85
    assert abs(r.tstr_auc - r.trtr_auc) < 0.06
    assert abs(r.tstr_f1 - r.trtr_f1) < 0.12
    shuffled = other.assign(
        y=np.random.default_rng(0).permutation(other["y"].to_numpy())
    )
    r = quality_report(real, shuffled, target="y", holdout=hold)
    assert 0.35 < r.tstr_auc < 0.65
    assert r.trtr_auc > 0.85


def test_quality_report__class_share_and_a_class_missing_from_synthetic(data):
    real, hold = data.iloc[:300], data.iloc[300:600]
    syn = data.iloc[600:900]
    syn = syn[syn["y"] == "no"]
    r = quality_report(real, syn, target="y", holdout=hold)
    minority = r.minority_class
    assert minority == "yes"
    assert r.class_share_synthetic[minority] == 0.0
    assert r.minority_share_drift == pytest.approx(1.0)
    assert r.tstr_auc == 0.5  # a constant model
    assert any("one class" in n for n in r.notes)


def test_quality_report__missing_values_are_ignored_and_json_has_no_nan(data):
    real = data.iloc[:200].copy()
    real.loc[real.index[:20], "x"] = np.nan
    real.loc[real.index[10:30], "c"] = None
    r = quality_report(real, real, target="y")
    shapes = {c.name: c for c in r.columns}
    assert shapes["x"].score == 1.0
    assert shapes["x"].missing_real == 0.1
    text = json.dumps(r.to_json(), allow_nan=False)
    assert json.loads(text)["column_shapes"] == 1.0


def test_quality_report__refuses_tables_it_cannot_compare(data):
    real = data.iloc[:50]
    with pytest.raises(ValueError, match=r"missing \['c'\], extra \['k'\]"):
        quality_report(real, real.rename(columns={"c": "k"}))
    with pytest.raises(ValueError, match="target column 'y' is missing from synthetic"):
        quality_report(real, real.drop(columns="y"), target="y")
    with pytest.raises(ValueError, match="column 'x' is numeric .* synthetic table"):
        quality_report(real, real.assign(x="text"))
    with pytest.raises(ValueError, match="synthetic is empty"):
        quality_report(real, real.iloc[:0])


def test_scm_edges__probability_and_dag_share():
    cols = (
        Column("a"),
        Column("b"),
        Column("y", "categorical", ("0", "1"), is_target=True),
    )
    probs = np.array([[0, 0.9, 0.2], [0, 0, 0.6], [0, 0, 0]])
    dags = np.zeros((4, 3, 3), bool)
    dags[:3, 0, 1] = True
    dags[:, 1, 2] = True
    info = FitInfo(cols, probs, dags, (), {}, {}, 0, 10, {})
    notes: list[str] = []
    n, edges = qm.scm_edges(types.SimpleNamespace(info=info), ["a", "b", "y"], notes)
    assert n == 4
    assert notes == []
    assert edges == [("a", "b", 0.9, 0.75), ("b", "y", 0.6, 1.0), ("a", "y", 0.2, 0.0)]


def test_write_report__writes_the_four_files_and_refuses_foreign_folders(
    data, tmp_path
):
    real, hold = data.iloc[:150], data.iloc[150:300]
    r = quality_report(real, data.iloc[300:450], target="y", holdout=hold)
    out = write_report(r, tmp_path / "rep")
    assert sorted(p.name for p in out.iterdir()) == [
        "columns.png", "pair_trends.png", "report.json", "report.md",
    ]  # fmt: skip
    md = (out / "report.md").read_text()
    for text in ("KSComplement", "1 - max_x", "TVComplement", "ContingencySimilarity",
                 "TSTR", "DCR", "0.5: the", "| tstr_auc |"):  # fmt: skip
        assert text in md, text
    assert json.loads((out / "report.json").read_text())["tstr_auc"] == r.tstr_auc
    assert (out / "columns.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(FileExistsError, match="--overwrite"):
        write_report(r, out)
    assert write_report(r, out, overwrite=True) == out
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not a report folder"):
        write_report(r, tmp_path / "mine", overwrite=True)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]


def test_split_holdout__is_stratified_and_seeded(data):
    train, hold = split_holdout(data, "y", seed=3)
    assert len(train) + len(hold) == len(data)
    share = data["y"].value_counts(normalize=True)["yes"]
    assert hold["y"].value_counts(normalize=True)["yes"] == pytest.approx(
        share, abs=0.01
    )
    assert split_holdout(data, "y", seed=3)[1].equals(hold)


@pytest.fixture
def csvs(tmp_path, data):
    data.iloc[:120].to_csv(tmp_path / "real.csv", index=False)
    data.iloc[120:240].to_csv(tmp_path / "syn.csv", index=False)
    data.iloc[240:300].to_csv(tmp_path / "hold.csv", index=False)
    data.iloc[:50].drop(columns="y").to_csv(tmp_path / "noy.csv", index=False)
    data.iloc[:50].rename(columns={"z": "w"}).to_csv(
        tmp_path / "other.csv", index=False
    )
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "binary.csv").write_bytes(b"\x00\x01\x02\xff" * 10)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "a.txt").write_text("mine")
    return tmp_path


_BAD = [
    (
        ["real.csv", "other.csv"],
        ["--target", "y"],
        r"other.csv \(synthetic\) does not have the columns .*"
        r"missing \['z'\], extra \['w'\]",
    ),
    (["real.csv", "empty.csv"], [], r"empty.csv is empty"),
    (
        ["real.csv", "noy.csv"],
        ["--target", "y"],
        r"target column 'y' is missing from .*noy.csv",
    ),
    (
        ["real.csv", "syn.csv"],
        ["--target", "y", "--holdout", "{tmp}/noy.csv"],
        r"'y' is missing from .*noy.csv \(holdout\)",
    ),
    (["real.csv", "binary.csv"], [], r"binary.csv"),
    (["real.csv", "nope.csv"], [], r"nope.csv: no such file"),
    (
        ["real.csv", "syn.csv"],
        ["--target", "y", "-o", "{tmp}/taken", "--overwrite"],
        r"taken exists and is not a report folder",
    ),
    (["real.csv", "syn.csv"], ["-o", "{tmp}/taken"], r"taken already exists"),
]


@pytest.mark.parametrize(("files", "flags", "message"), _BAD)
def test_cli_report__bad_input_is_exit_2_and_writes_nothing(
    csvs, capsys, files, flags, message
):
    before = sorted(p.name for p in csvs.iterdir())
    argv = ["report", *(str(csvs / f) for f in files)]
    argv += [f.format(tmp=csvs) for f in flags]
    if "-o" not in flags:
        argv += ["-o", str(csvs / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("causalmixft report: error: ")
    assert err.count("\n") == 1
    assert re.search(message, err), err
    assert sorted(p.name for p in csvs.iterdir()) == before  # nothing written
    assert [p.name for p in (csvs / "taken").iterdir()] == ["a.txt"]


def test_cli_report__happy_path_splits_a_holdout_when_none_is_given(csvs, capsys):
    out = csvs / "rep"
    argv = ["report", str(csvs / "real.csv"), str(csvs / "syn.csv"), "--target", "y"]
    assert main([*argv, "-o", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "tstr_auc" in stdout
    assert "wrote" in stdout
    md = (out / "report.md").read_text()
    assert "30% of" in md
    assert "TRTR, DCR and the shapes use the other 70% (84 rows)" in md
    record = json.loads((out / "report.json").read_text())
    assert record["n_real"] == 84
    assert record["n_holdout"] == 36
    assert record["tstr_auc"] is not None
    hold = ["--holdout", str(csvs / "hold.csv"), "--overwrite"]
    assert main([*argv, *hold, "-o", str(out)]) == 0
    record = json.loads((out / "report.json").read_text())
    assert record["n_real"] == 120
    assert record["n_holdout"] == 60
    assert record["holdout_origin"].endswith("hold.csv")


def test_quality_modules__import_only_the_allowed_libraries():
    # numpy/pandas/sklearn/matplotlib and jaxscm's schema helpers; never torch,
    # tabpfn, DoWhy or causal-learn (checked on the source, at any depth).
    import ast
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "finetune"
    files = [root / "quality.py", *sorted(root.glob("_quality_*.py"))]
    allowed = {"numpy", "pandas", "sklearn", "matplotlib", "jaxscm", "finetune"}
    assert len(files) >= 4
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                mods = [node.module or ""]
            else:
                continue
            for m in mods:
                top = m.split(".")[0]
                assert top in allowed or top in sys.stdlib_module_names, (path, m)
