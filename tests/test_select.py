"""The selection protocol: the rule on hand-made records, and the frozen choices."""

from __future__ import annotations

import math
import shutil

import pytest

from benchmarks.study import Method, Profile, profile, read_records
from benchmarks.study._grid import default_out, records_path
from benchmarks.study._profiles import (
    DEV_SEEDS,
    DEV_TABLES,
    REPORTED,
    SELECTED_FT,
    SELECTED_MIX,
    SETTINGS,
)
from benchmarks.study.select import build_selection_report, choose

_CANDIDATES = (
    Method("zero-shot", "none", zero_shot=True),
    Method("slow", "none", overrides={"lr": 1e-5}),
    Method("fast", "none", overrides={"lr": 1e-4}),
)


def _profile() -> Profile:
    return Profile(
        study="select-ft",
        name="test",
        datasets=("a", "b"),
        methods=_CANDIDATES,
        sizes=(128,),
        seeds=(1000,),
        settings={"max_steps": 30},
        cell_seconds=1.0,
    )


def _rec(dataset, method, held_out, val=0.8, status="ok"):
    return {
        "key": f"select-ft/{dataset}/{method}/128/1000",
        "cell": {
            "study": "select-ft",
            "dataset": dataset,
            "method": method,
            "n_train": 128,
            "seed": 1000,
        },
        "status": status,
        "metrics": {"test_roc_auc": held_out, "val_roc_auc": val, "best_step": 5},
        "timing": {"wall_s": 2.0},
    }


def test_choose__highest_mean_held_out_score_wins_not_the_best_validation():
    recs = [
        _rec("a", "zero-shot", 0.70),
        _rec("b", "zero-shot", 0.80),
        # slow: mean 0.76, the better validation score on both splits
        _rec("a", "slow", 0.72, val=0.99),
        _rec("b", "slow", 0.80, val=0.99),
        # fast: mean 0.78
        _rec("a", "fast", 0.68, val=0.5),
        _rec("b", "fast", 0.88, val=0.5),
    ]
    c = choose(_profile(), recs)
    assert c.name == "fast"
    assert dict(c.overrides) == {"lr": 1e-4}
    rows = {r["name"]: r for r in c.rows}
    assert rows["slow"]["score"] == pytest.approx(0.76)
    assert rows["fast"]["improvement"] == pytest.approx(((-0.02) + 0.08) / 2)
    assert (rows["fast"]["wins"], rows["fast"]["losses"]) == (1, 1)
    assert (rows["slow"]["wins"], rows["slow"]["losses"]) == (1, 0)


def test_choose__a_tie_goes_to_the_earlier_candidate():
    recs = [_rec(d, m, 0.75) for d in "ab" for m in ("zero-shot", "slow", "fast")]
    assert choose(_profile(), recs).name == "slow"


def test_choose__a_candidate_missing_a_split_or_failed_on_one_cannot_win():
    recs = [
        _rec("a", "slow", 0.70),
        _rec("b", "slow", 0.70),
        _rec("a", "fast", 0.99),
        _rec("b", "fast", None, status="error"),
    ]
    c = choose(_profile(), recs)
    assert c.name == "slow"
    fast = next(r for r in c.rows if r["name"] == "fast")
    assert fast["splits"] == "1/2"
    assert math.isnan(fast["score"])
    with pytest.raises(ValueError, match="no candidate has a record on all 2"):
        choose(_profile(), recs[2:])


def test_selection_profiles__development_splits_are_disjoint_from_reported_ones():
    for study in ("select-ft", "select-mix"):
        dev = profile(study, "quick")
        assert dev.datasets == DEV_TABLES
        assert set(dev.seeds) <= set(DEV_SEEDS)
        for name in ("quick", "full"):
            assert min(profile(study, name).seeds) >= 1000
    for study in REPORTED:
        for name in ("quick", "full"):
            assert max(profile(study, name).seeds) < 1000
        assert not set(profile(study, "quick").datasets) & set(DEV_TABLES)


@pytest.mark.parametrize(
    ("study", "frozen"), [("select-ft", SELECTED_FT), ("select-mix", SELECTED_MIX)]
)
def test_frozen_choice__equals_the_rule_on_the_committed_development_records(
    study, frozen, tmp_path
):
    p = profile(study, "quick")
    path = records_path(default_out(p))
    assert path.exists(), f"{path}: the committed development records are missing"
    c = choose(p, read_records(path, p.settings_sha256()))
    assert dict(c.overrides) == {k: frozen[k] for k in c.overrides}
    shutil.copy(path, tmp_path / path.name)
    report = build_selection_report(p, tmp_path).read_text()
    assert f"Chosen: **{c.name}**" in report


def test_reported_settings__carry_the_frozen_choice():
    for (study, _name), settings in SETTINGS.items():
        if study in REPORTED:
            assert settings["lr"] == SELECTED_FT["lr"]
            assert settings["eval_every"] == SELECTED_FT["eval_every"]
            assert settings["ratio"] == SELECTED_MIX["ratio"]
    for study in ("paper", "imbalanced"):  # convergence: real validation throughout
        for m in profile(study, "quick").methods:
            kw = m.estimator_kwargs(SETTINGS[(study, "quick")])
            scm = m.augment in ("causalmix", "scm_only")
            assert kw.get("validation", "real") == (
                SELECTED_MIX["validation"] if scm else "real"
            ), m.name
