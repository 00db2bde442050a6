"""The study: metrics on hand-computed cases, records, resuming, Ray = serial."""

from __future__ import annotations

import math
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks.study import (
    Method,
    Profile,
    RecordError,
    metrics,
    profile,
    read_records,
    run_grid,
)
from benchmarks.study._records import comparable, record_writer

ROOT = Path(__file__).resolve().parents[1]
TINY_SETTINGS = {"max_steps": 2, "eval_every": 1, "n_estimators": 1}


def _tiny(seeds: tuple[int, ...] = (0,)) -> Profile:
    """Two methods on one small table, two optimiser steps: a few seconds a cell."""
    return Profile(
        study="paper",
        name="test",
        datasets=("diabetes",),
        methods=(Method("zero-shot", "none", zero_shot=True), Method("plain", "none")),
        sizes=(32,),
        seeds=seeds,
        settings=TINY_SETTINGS,
        cell_seconds=5.0,
        split_options={"n_test": 100},
    )


# --- metrics against hand-computed cases ------------------------------------------


def test_roc_auc__binary_and_one_vs_rest_macro():
    p1 = np.array([0.1, 0.4, 0.35, 0.8])
    # positives 0.35, 0.8 vs negatives 0.1, 0.4: pairs won 1 + 2 of 4
    assert metrics.roc_auc(np.array([0, 0, 1, 1]), np.c_[1 - p1, p1]) == 0.75
    y = np.array([0, 1, 2, 0, 1, 2])
    p = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.2, 0.7, 0.1],
            [0.3, 0.3, 0.4],
            [0.5, 0.4, 0.1],
            [0.6, 0.3, 0.1],
            [0.1, 0.2, 0.7],
        ]
    )
    # class 0: positives .8 .5 vs .2 .3 .6 .1 -> (4 + 3) / 8; class 1: .7 .3 vs
    # .1 .3 .4 .2 -> (4 + 2.5) / 8 (a tie counts half); class 2: .4 .7 vs .1 .1
    # .1 .1 -> 1. Row 5 sums to 1 + 2e-16: the tie must survive (no renormalising).
    expected = (7 / 8 + 6.5 / 8 + 1.0) / 3
    assert metrics.roc_auc(y, p) == pytest.approx(expected, abs=1e-12)
    assert math.isnan(metrics.roc_auc(np.array([1, 1]), np.c_[1 - p1[:2], p1[:2]]))


def test_f1_scores__threshold_chosen_on_validation_applies_to_test():
    pv = np.array([0.125, 0.5, 0.375, 0.75])
    # validation: t = 0.25 predicts rows 2-4 minority: TP 2, FP 1 -> F1 0.8 (best)
    pt = np.array([0.3, 0.2, 0.6, 0.1])
    yt = np.array([1, 0, 1, 1])
    got = metrics.f1_scores(
        np.array([0, 0, 1, 1]), np.c_[1 - pv, pv], yt, np.c_[1 - pt, pt], 1
    )
    assert got["threshold"] == 0.25
    # test at 0.25: predicted [1, 0, 1, 0] -> minority TP 2, FN 1: F1 = 4 / 5;
    # class 0: TP 1, FP 1: F1 = 2 / 3
    assert got["minority_f1"] == pytest.approx(0.8)
    assert got["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    # argmax (0.5): predicted [0, 0, 1, 0] -> minority 2 / 4, class 0: 2 / 4
    assert got["minority_f1_argmax"] == pytest.approx(0.5)
    assert got["macro_f1_argmax"] == pytest.approx(0.5)


def test_predict_with_threshold__multiclass_falls_back_to_the_other_classes():
    p = np.array([[0.5, 0.3, 0.2], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]])
    assert metrics.predict_with_threshold(p, 2, 0.25).tolist() == [0, 2, 2]


def test_correlation_gap__perfect_anti_and_undefined():
    assert metrics.correlation_gap([0.6, 0.7, 0.8], [0.5, 0.6, 0.7]) == 0.0
    assert metrics.correlation_gap([0.6, 0.7, 0.8], [0.7, 0.6, 0.5]) == 2.0
    # r = 0.5 for (1, 2, 3) vs (1, 3, 2)
    assert metrics.correlation_gap([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert math.isnan(metrics.correlation_gap([0.6, 0.6, 0.6], [0.5, 0.6, 0.7]))
    assert math.isnan(metrics.correlation_gap([0.6, 0.7], [0.5, 0.6]))
    assert math.isnan(metrics.correlation_gap([0.6, float("nan"), 0.8], [1, 2, 3]))


def test_to_best__first_evaluation_with_the_highest_score():
    curve = [
        {"step": 0, "val_score": 0.7, "seconds": 1.0},
        {"step": 5, "val_score": 0.8, "seconds": 3.0},
        {"step": 10, "val_score": 0.8, "seconds": 5.0},
    ]
    assert metrics.to_best(curve) == (5, 3.0)
    curve[1]["val_score"] = None
    assert metrics.to_best(curve) == (10, 5.0)


def test_normalised_scores_ranks__hand_cases():
    assert metrics.normalised_scores({"a": 0.6, "b": 0.9, "c": 0.7}) == {
        "a": 0.0,
        "b": 1.0,
        "c": pytest.approx(1 / 3),
    }
    assert metrics.normalised_scores({"a": 0.8, "b": 0.8}) == {"a": 1.0, "b": 1.0}
    assert metrics.ranks({"a": 0.7, "b": 0.9, "c": 0.9}) == {
        "a": 3.0,
        "b": 1.5,
        "c": 1.5,
    }


def test_median_iqr__ignores_none_and_nan():
    assert metrics.median_iqr([1.0, 2.0, 3.0, 4.0, 5.0, None, float("nan")]) == (
        3.0,
        2.0,
        4.0,
    )
    assert all(math.isnan(v) for v in metrics.median_iqr([]))


def test_group_table__improvements_and_ranks_per_group():
    rows = [
        {"dataset": "d", "n_train": 1, "seed": 0, "method": "zs", "test_roc_auc": 0.7},
        {"dataset": "d", "n_train": 1, "seed": 0, "method": "a", "test_roc_auc": 0.8},
        {"dataset": "d", "n_train": 1, "seed": 0, "method": "b", "test_roc_auc": 0.6},
        {"dataset": "e", "n_train": 1, "seed": 0, "method": "zs", "test_roc_auc": 0.9},
        {"dataset": "e", "n_train": 1, "seed": 0, "method": "a", "test_roc_auc": 0.8},
        # a group without the baseline counts for nothing
        {"dataset": "f", "n_train": 1, "seed": 0, "method": "a", "test_roc_auc": 0.5},
    ]
    t = metrics.group_table(rows, "zs")
    assert t["a"]["improvement"] == pytest.approx([0.1, -0.1])
    # group d: zs 0.5, a 1.0 -> +0.5; group e: zs 1, a 0 -> -1
    assert t["a"]["normalised"] == pytest.approx([0.5, -1.0])
    assert t["a"]["rank"] == [1.0, 2.0]
    assert t["b"]["normalised"] == pytest.approx([-0.5])
    assert t["zs"]["improvement"] == [0.0, 0.0]


# --- profiles and methods ----------------------------------------------------------


def test_profile__cells_are_unique_and_carry_every_axis():
    p = profile("imbalanced", "quick")
    keys = [c.key for c in p.cells()]
    assert (
        len(keys)
        == len(set(keys))
        == (len(p.datasets) * len(p.methods) * len(p.sizes) * len(p.seeds))
    )
    assert {m.name for m in p.methods} >= {"zero-shot", "plain", "tabddpm", "ctgan"}
    with pytest.raises(ValueError, match="unknown study 'nope'"):
        profile("nope", "quick")


def test_method__passes_augment_and_options_through():
    m = Method("smote-balanced", "smote", {"k": 3})
    assert m.estimator_kwargs({"max_steps": 9}) == {
        "max_steps": 9,
        "augment": "smote",
        "augment_options": {"k": 3},
    }
    assert "augment_options" not in Method("plain", "none").estimator_kwargs({})
    zs = Method("zero-shot", "none", zero_shot=True)
    assert zs.estimator_kwargs({"max_steps": 9})["max_steps"] == 0
    assert pickle.loads(pickle.dumps(m)) == m  # Ray ships methods to its workers


def test_settings_sha256__changes_with_the_settings():
    a = _tiny()
    b = Profile(**{**a.__dict__, "settings": {**TINY_SETTINGS, "lr": 1e-4}})
    assert a.settings_sha256() != b.settings_sha256()


# --- records -----------------------------------------------------------------------


def _write(path: Path, n: int = 3) -> None:
    with record_writer(path) as w:
        for i in range(n):
            w.append(
                {
                    "key": f"k{i}",
                    "cell": {"i": i},
                    "status": "ok",
                    "settings_sha256": "s",
                    "metrics": {"test_roc_auc": 0.5 + i / 10},
                }
            )


def test_records__round_trip(tmp_path):
    _write(tmp_path / "r.jsonl")
    recs = read_records(tmp_path / "r.jsonl", "s")
    assert [r["key"] for r in recs] == ["k0", "k1", "k2"]
    assert recs[2]["metrics"]["test_roc_auc"] == 0.7


def test_records__truncated_last_line_is_reported_with_line_and_fix(tmp_path):
    path = tmp_path / "r.jsonl"
    _write(path)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(RecordError, match=r"r\.jsonl, line 3: truncated.*sed -i '3d'"):
        read_records(path)


def test_records__edited_value_is_reported_as_corrupted(tmp_path):
    path = tmp_path / "r.jsonl"
    _write(path)
    text = path.read_text().replace('"test_roc_auc": 0.6', '"test_roc_auc": 0.9')
    path.write_text(text)
    with pytest.raises(RecordError, match=r"line 2: corrupted record for k1"):
        read_records(path)


def test_records__garbage_duplicate_and_other_settings_are_reported(tmp_path):
    path = tmp_path / "r.jsonl"
    _write(path)
    good = path.read_bytes()
    path.write_bytes(good + b"{not json\n")
    with pytest.raises(RecordError, match="line 4: not a JSON record"):
        read_records(path)
    first = good.splitlines(keepends=True)[0]
    path.write_bytes(good + first)
    with pytest.raises(RecordError, match="lines 1 and 4: cell k0 is recorded twice"):
        read_records(path)
    path.write_bytes(good)
    with pytest.raises(RecordError, match="line 1: record of other fine-tuning"):
        read_records(path, "other")


def test_record_writer__a_second_grid_on_the_same_file_is_refused(tmp_path):
    with (
        record_writer(tmp_path / "r.jsonl"),
        pytest.raises(RecordError, match="being written by another grid"),
    ):
        record_writer(tmp_path / "r.jsonl").__enter__()


def test_cli__corrupted_records_exit_2_naming_the_line(tmp_path, capsys):
    from finetune.cli import main

    path = tmp_path / "records.jsonl"
    path.write_text('{"key": "x"\n')
    assert main(["bench", "paper", "--out", str(tmp_path), "--dry-run"]) == 2
    assert "records.jsonl, line 1: not a JSON record" in capsys.readouterr().err


def test_cli__dry_run_prints_cells_and_estimate(tmp_path, capsys):
    from finetune.cli import main

    assert main(["bench", "convergence", "--out", str(tmp_path), "--dry-run"]) == 0
    n = len(profile("convergence", "quick").cells())
    assert f"convergence/quick: {n} cells" in capsys.readouterr().out
    assert not (tmp_path / "records.jsonl").exists()


# --- the grid on real cells --------------------------------------------------------


class _Stop(KeyboardInterrupt):
    """Ctrl-C after the first record, as a user stopping the grid."""


def test_run_grid__interrupted_run_resumes_without_lost_or_repeated_cells(tmp_path):
    p = _tiny()

    def stop(rec):
        raise _Stop

    with pytest.raises(_Stop):
        run_grid(p, tmp_path, on_record=stop)
    first = read_records(tmp_path / "records.jsonl")
    assert [r["key"] for r in first] == ["paper/diabetes/zero-shot/32/0"]
    rest = run_grid(p, tmp_path)
    recs = read_records(tmp_path / "records.jsonl", p.settings_sha256())
    assert [r["key"] for r in rest] == ["paper/diabetes/plain/32/0"]
    assert sorted(r["key"] for r in recs) == sorted(c.key for c in p.cells())
    assert recs[0] == first[0]  # untouched by the resume
    assert run_grid(p, tmp_path) == []  # nothing left
    plain, zs = recs[1], recs[0]
    assert plain["status"] == "ok", plain["error"]
    assert [c[0] for c in plain["curve"]] == [0, 1, 2]
    assert zs["metrics"]["best_step"] == 0
    assert zs["metrics"]["gap"] is None
    assert 0.5 < plain["metrics"]["test_roc_auc"] <= 1.0
    assert len(zs["env"]["tfm_sha256"]) == 64
    assert plain["machine"]["loadavg_start"]
    assert plain["timing"]["wall_s"] > 0


def test_run_grid__a_failing_cell_is_recorded_as_an_error(tmp_path):
    p = Profile(
        **{
            **_tiny().__dict__,
            "methods": (Method("bad", "no-such-augmenter"),),
        }
    )
    (rec,) = run_grid(p, tmp_path)
    assert rec["status"] == "error"
    assert "no-such-augmenter" in rec["error"]
    assert run_grid(p, tmp_path) == []  # not retried ...
    assert len(run_grid(p, tmp_path, retry_errors=True)) == 1  # ... unless asked
    assert len(read_records(tmp_path / "records.jsonl")) == 1


_KILLED_GRID = """
import sys
from benchmarks.study import Method, Profile, run_grid
p = Profile(study="paper", name="test", datasets=("diabetes",),
    methods=(Method("zero-shot", "none", zero_shot=True), Method("plain", "none")),
    sizes=(32,), seeds=(0, 1), settings={settings!r}, cell_seconds=5.0,
    split_options={{"n_test": 100}})
run_grid(p, sys.argv[1])
"""


@pytest.mark.slow  # a subprocess imports torch and runs cells: 9-18 s, more under load
def test_run_grid__sigkilled_grid_resumes_without_lost_or_repeated_cells(tmp_path):
    code = _KILLED_GRID.format(settings=TINY_SETTINGS)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], env=env, cwd=ROOT
    )
    path = tmp_path / "records.jsonl"
    deadline = time.monotonic() + 300
    while not (path.exists() and path.read_bytes().count(b"\n") >= 1):
        assert proc.poll() is None, "the grid ended before its first record"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = read_records(path)
    assert 1 <= len(before) < 4
    p = _tiny(seeds=(0, 1))
    run_grid(p, tmp_path)
    keys = [r["key"] for r in read_records(path, p.settings_sha256())]
    assert sorted(keys) == sorted(c.key for c in p.cells())


# --- Ray ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_ray():
    """Ray's local instance with 2 CPUs, shut down after the module's tests."""
    ray = pytest.importorskip("ray")
    env = {"PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu", "OMP_NUM_THREADS": "1"}
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": env},
    )
    yield ray
    ray.shutdown()


def _flat(o, path=""):
    if isinstance(o, dict):
        for k, v in o.items():
            yield from _flat(v, f"{path}.{k}")
    elif isinstance(o, list):
        for i, v in enumerate(o):
            yield from _flat(v, f"{path}[{i}]")
    else:
        yield path, o


def _differences(a, b):
    fa, fb = dict(_flat(a)), dict(_flat(b))
    return [
        (k, fa.get(k), fb.get(k)) for k in sorted(fa | fb) if fa.get(k) != fb.get(k)
    ]


@pytest.mark.slow  # ray.init and two worker starts: 15-25 s on 2 shared cores
@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")
def test_run_grid__two_cells_on_ray_equal_the_serial_run(local_ray, tmp_path):
    p = _tiny()
    serial = run_grid(p, tmp_path / "serial")
    on_ray = run_grid(p, tmp_path / "ray", ray=True)
    by_key = {r["key"]: r for r in read_records(tmp_path / "ray/records.jsonl")}
    assert sorted(by_key) == sorted(r["key"] for r in serial)
    for r in serial:
        assert r["status"] == "ok", r["error"]
        assert _differences(comparable(by_key[r["key"]]), comparable(r)) == []
    assert {r["machine"]["pid"] for r in on_ray}.isdisjoint({os.getpid()})


@pytest.mark.slow  # Ray workers run real cells
@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")
def test_run_grid__interrupted_ray_grid_resumes_without_lost_or_repeated_cells(
    local_ray, tmp_path
):
    p = _tiny(seeds=(0, 1))

    def stop(rec):
        raise _Stop

    with pytest.raises(_Stop):
        run_grid(p, tmp_path, ray=True, on_record=stop)
    assert len(read_records(tmp_path / "records.jsonl")) == 1
    run_grid(p, tmp_path, ray=True)
    keys = [r["key"] for r in read_records(tmp_path / "records.jsonl")]
    assert sorted(keys) == sorted(c.key for c in p.cells())


# --- the report --------------------------------------------------------------------


def _record(dataset, method, auc, curve, gap):
    m = {
        "test_roc_auc": auc,
        "gap": gap,
        "minority_f1": 0.5,
        "macro_f1": 0.6,
        "best_step": curve[-1][0],
    }
    return {
        "key": f"paper/{dataset}/{method}/32/0",
        "cell": {
            "study": "paper",
            "dataset": dataset,
            "method": method,
            "n_train": 32,
            "seed": 0,
        },
        "status": "ok",
        "error": None,
        "settings_sha256": _tiny().settings_sha256(),
        "metrics": m,
        "curve": curve,
        "timing": {"wall_s": 10.0, "seconds_to_best": 1.0},
        "env": {"versions": {"torch": "x"}, "tfm_sha256": "0" * 64},
        "machine": {"loadavg_start": [1.0, 1.0, 1.0]},
    }


def test_build_report__table_and_plots_from_the_records(tmp_path):
    from benchmarks.study import build_report
    from benchmarks.study.report import summarise

    flat = [[0, 0.7, 0.7, 0.7]]
    up = [[0, 0.7, 0.7, 0.7], [1, 0.8, 0.75, 0.8], [2, 0.9, 0.8, 0.9]]
    with record_writer(tmp_path / "records.jsonl") as w:
        for rec in (
            _record("a", "zero-shot", 0.70, flat, None),
            _record("a", "plain", 0.80, up, 0.0),
            _record("b", "zero-shot", 0.90, flat, None),
            _record("b", "plain", 0.84, up, 0.5),
        ):
            w.append(rec)
    path = build_report(_tiny(), tmp_path, command="causalmixft bench paper")
    text = path.read_text()
    # plain: improvements +0.10, -0.06 (median +0.02); normalised +1, -1 (median 0,
    # IQR -0.5..0.5); ranks 1, 2 (mean 1.5); gaps 0, 0.5 (median 0.25)
    s = summarise(_tiny(), read_records(tmp_path / "records.jsonl"))["plain"]
    assert s["improvement"] == pytest.approx((0.02, -0.02, 0.06))
    assert s["normalised"] == pytest.approx((0.0, -0.5, 0.5))
    assert s["rank"] == 1.5
    assert s["gap"] == pytest.approx((0.25, 0.125, 0.375))
    assert (
        summarise(_tiny(), read_records(tmp_path / "records.jsonl"))["zero-shot"][
            "gap_undefined"
        ]
        == 2
    )
    row = next(line for line in text.splitlines() if line.startswith("| plain |"))
    assert row.startswith("| plain | 2 (0) | 0.820 [0.810, 0.830] | +0.020 [")
    assert "Command: `causalmixft bench paper`" in text
    for png in ("normalised", "rank", "gap", "f1", "convergence"):
        assert (tmp_path / f"{png}.png").stat().st_size > 1000


def _kill_first_cell_worker(stop_at: float, killed: list[int]) -> None:
    """SIGKILLs the first Ray worker of this process's own Ray instance seen running
    a cell (Ray names it ``ray::run_cell``); only descendants of this process."""
    import psutil

    me = psutil.Process(os.getpid())
    while time.monotonic() < stop_at and not killed:
        for child in me.children(recursive=True):
            try:
                if any("ray::run_cell" in part for part in child.cmdline()):
                    child.kill()
                    killed.append(child.pid)
                    return
            except psutil.Error:
                continue
        time.sleep(0.05)


@pytest.mark.slow  # Ray workers run real cells, one of them twice
@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")
def test_run_grid__killed_ray_worker_has_its_cell_rerun_once(local_ray, tmp_path):
    import threading

    pytest.importorskip("psutil")
    p = Profile(**{**_tiny().__dict__, "settings": {**TINY_SETTINGS, "max_steps": 10}})
    killed: list[int] = []
    killer = threading.Thread(
        target=_kill_first_cell_worker, args=(time.monotonic() + 120, killed)
    )
    killer.start()
    try:
        written = run_grid(p, tmp_path, ray=True)
    finally:
        killer.join()
    assert len(killed) == 1
    keys = [r["key"] for r in read_records(tmp_path / "records.jsonl")]
    assert sorted(keys) == sorted(c.key for c in p.cells())
    assert all(r["status"] == "ok" for r in written)
    assert killed[0] not in {r["machine"]["pid"] for r in written}
