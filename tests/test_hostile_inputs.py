"""Hostile input to the command line and the table readers (issue 16, the input side).

Every case ends in one error line naming the file, column, row or flag and the fix,
exit status 2, and nothing written; a run folder that is not ours is never touched;
an interrupted write leaves no temporary file behind (or the next write removes it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bridge
from finetune.cli import main
from jaxscm._atomic import atomic_write, remove_stale

ROOT = Path(__file__).resolve().parents[1]


def _table(n: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "a": rng.normal(size=n).round(3),
            "b": rng.normal(size=n).round(3),
            "y": ["p", "q"] * (n // 2),
        }
    )


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes (to assert nothing changed)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _one_error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"causalmixft {command}: error: "), err
    return err


# -- the run folder of `causalmixft finetune` ---------------------------------------


def test_finetune__refuses_a_folder_holding_a_users_checkpoint_and_history(
    tmp_path, capsys
):
    _table().to_csv(tmp_path / "data.csv", index=False)
    run = tmp_path / "run"
    (run / "checkpoint").mkdir(parents=True)
    (run / "checkpoint" / "weights.bin").write_bytes(b"the user's own weights")
    (run / "history.csv").write_text("epoch,loss\n1,0.5\n")
    before = _tree(run)
    argv = ["finetune", str(tmp_path / "data.csv"), "--target", "y", "-o", str(run)]
    assert main(argv + ["--augment", "none", "--max-steps", "0"]) == 2
    err = _one_error_line(capsys, "finetune")
    assert "is not an unfinished causalmixft run" in err
    assert "nothing was changed" in err
    assert _tree(run) == before


def test_finetune__refuses_an_unfinished_run_of_other_data(tmp_path, capsys):
    from finetune._run import _MARKER, _check_run_folder

    run = tmp_path / "run"
    (run / "checkpoint").mkdir(parents=True)
    (run / _MARKER).write_text('{"inputs": "abc"}\n')
    assert _check_run_folder(run, "abc") is True  # the same inputs resume
    before = _tree(run)
    with pytest.raises(FileExistsError, match="unfinished run of other data"):
        _check_run_folder(run, "def")
    (run / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"also \['notes.txt'\]"):
        _check_run_folder(run, "abc")
    assert _tree(run) == {**before, "notes.txt": b"mine"}


def test_finetune__a_failed_run_leaves_no_folder(tmp_path, capsys):
    # 3 rows: too few for the validation split, refused before any training.
    _table(4).iloc[:3].to_csv(tmp_path / "data.csv", index=False)
    run = tmp_path / "run"
    argv = ["finetune", str(tmp_path / "data.csv"), "--target", "y", "-o", str(run)]
    assert main(argv + ["--augment", "none"]) == 2
    err = _one_error_line(capsys, "finetune")
    assert "--validation synthetic" in err  # a flag `finetune` has
    assert not run.exists()


def test_finetune_cli__flags_are_checked_and_named(tmp_path, capsys):
    import torch

    _table().to_csv(tmp_path / "data.csv", index=False)
    base = ["finetune", str(tmp_path / "data.csv"), "--target", "y", "-o"]
    base.append(str(tmp_path / "run"))
    for flags, named in [
        (["--seed", "-1"], "argument --seed: must be an integer >= 0"),
        (["--lr", "nan"], "argument --lr: must be a finite number > 0"),
        (["--checkpoint-every", "0"], "argument --checkpoint-every"),
        (["--validation-fraction", "1.5"], "argument --validation-fraction"),
    ]:
        with pytest.raises(SystemExit) as e:
            main(base + flags)
        assert e.value.code == 2
        assert named in _one_error_line(capsys, "finetune")  # no usage block
    if not torch.cuda.is_available():
        assert main(base + ["--device", "cuda"]) == 2
        assert "--device 'cuda'" in _one_error_line(capsys, "finetune")
    assert not (tmp_path / "run").exists()
    from finetune.cli import build_parser

    args = build_parser().parse_args(base + ["--checkpoint-every", "7"])
    assert args.checkpoint_every == 7


def test_fit_scm_cli__alpha_seed_and_kinds_are_checked(tmp_path, capsys):
    _table().to_csv(tmp_path / "data.csv", index=False)
    base = ["fit-scm", str(tmp_path / "data.csv"), "--target", "y", "-o"]
    base.append(str(tmp_path / "m"))
    for flags, named in [
        (["--alpha", "2"], "argument --alpha: must be a number in (0, 1)"),
        (["--alpha", "nan"], "argument --alpha"),
        (["--seed", "-1"], "argument --seed"),
        (["--n-dags", "0"], "argument --n-dags"),
    ]:
        with pytest.raises(SystemExit):
            main(base + flags)
        assert named in capsys.readouterr().err
    assert main(base + ["--numeric", "b", "--categorical", "b"]) == 2
    assert "given two kinds" in _one_error_line(capsys, "fit-scm")
    assert not (tmp_path / "m").exists()
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "notes.txt").write_text("mine")
    t0 = time.perf_counter()
    assert main(base) == 2  # refused before the fit, not after it
    assert "already exists" in _one_error_line(capsys, "fit-scm")
    assert main(base + ["--overwrite"]) == 2
    assert "not a model directory" in _one_error_line(capsys, "fit-scm")
    assert time.perf_counter() - t0 < 5
    assert (tmp_path / "m" / "notes.txt").read_text() == "mine"


# -- reading a user's table ---------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"a,b,y\n1e39,2,p\n2,3,q\n", r"column 'a' holds 1e\+39 in line 2, beyond"),
        (b"a,b,y\n1,2,p\ninf,3,q\n", r"column 'a' holds inf in line 3, infinite"),
        (b"a,b,y\n1,2,p\n2,-1e400,q\n", r"column 'b' holds -inf in line 3"),
        (b"a,a,y\n1,2,p\n2,3,q\n", r"column 'a' appears more than once"),
        (b",b,y\n1,2,p\n2,3,q\n", r"column 1 of the header has no name"),
        (b"a,y\n1,2,p\n2,3,q\n", r"more fields than the header"),
        (b"a,y\x00\x01\n\x02,\x03\n", r"cannot read .*t\.csv as CSV: it holds NUL"),
    ],
)
def test_read_table__refuses_hostile_cells_naming_file_and_place(
    tmp_path, content, message
):
    (tmp_path / "t.csv").write_bytes(content)
    with pytest.raises(ValueError, match=message) as e:
        bridge.read_table(tmp_path / "t.csv")
    assert "t.csv" in str(e.value)


def test_read_table__a_plain_file_named_gz_names_the_fix(tmp_path):
    (tmp_path / "t.csv.gz").write_text("a,y\n1,p\n2,q\n")
    with pytest.raises(ValueError, match=r"not gzip-compressed; rename it to 't\.csv'"):
        bridge.read_table(tmp_path / "t.csv.gz")


def test_read_table__a_dataset_name_is_not_a_file(tmp_path, capsys):
    out = str(tmp_path / "m")
    assert main(["fit-scm", "credit-g", "--target", "class", "-o", out]) == 2
    err = _one_error_line(capsys, "fit-scm")
    assert "credit-g: no such file" in err
    assert "demo --dataset" in err


def test_schema__huge_numbers_and_text_caps_name_column_and_fix():
    import jaxscm
    from jaxscm import Column
    from jaxscm.fitting._table import encode

    with pytest.raises(ValueError, match=r"column 'a' holds 1e\+39 in row 1"):
        encode(pd.DataFrame({"a": [1.0, 1e39]}), [Column("a")])
    text = pd.DataFrame({"c": [f"k{i}" for i in range(60)], "y": ["p", "q"] * 30})
    with pytest.raises(ValueError, match="more than the cap") as e:
        jaxscm.infer_schema(text, "y")
    assert "numeric" not in str(e.value)  # text cannot be declared numeric
    nums = pd.DataFrame({"c": list(range(60)), "y": ["p", "q"] * 30})
    kinds = {"c": "categorical"}
    with pytest.raises(ValueError, match="declare it numeric"):
        jaxscm.infer_schema(nums, "y", kinds=kinds)


def test_estimator_check_X__names_the_column_of_an_infinite_cell():
    from finetune._estimator import _check_X

    with pytest.raises(ValueError, match=r"X: column 'b' holds inf in row 1"):
        _check_X(pd.DataFrame({"a": [1.0, 2.0], "b": [0.0, np.inf]}))
    with pytest.raises(ValueError, match=r"column 0 holds 1e\+39 in row 0"):
        _check_X(np.array([[1e39, 1.0]]))
    assert _check_X(pd.DataFrame({"a": [1.0, np.nan]})).shape == (2, 1)


# -- interrupted writes -------------------------------------------------------------


def test_remove_stale__removes_dead_writers_temp_files_only(tmp_path):
    target = tmp_path / "x.parquet"
    dead = tmp_path / ".x.parquet.999999999.tmp"
    live = tmp_path / f".x.parquet.{os.getppid()}.tmp"  # a running process
    other = tmp_path / ".y.parquet.999999999.tmp"
    for p in (dead, live, other):
        p.write_bytes(b"half")
    with atomic_write(target) as f:
        f.write(b"whole")
    assert target.read_bytes() == b"whole"
    assert not dead.exists()
    assert live.exists()
    assert other.exists()
    assert remove_stale(target) == []


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    import jaxscm

    path = tmp_path_factory.mktemp("model") / "m"
    jaxscm.save_fit(path, jaxscm.fit_scm(_table(40), "y", n_dags=1, progress=False))
    return path


def _start_sample(model_dir: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, "-m", "finetune.cli", "sample", str(model_dir)]
    argv += ["-n", "50000000", "--chunk", "20000", "-o", str(out)]
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_temp(proc: subprocess.Popen, folder: Path, timeout: float = 120) -> Path:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        tmps = [p for p in folder.iterdir() if p.name.endswith(".tmp")]
        if tmps and tmps[0].stat().st_size > 0:
            return tmps[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the sampler wrote nothing")


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_sample__sigterm_mid_write_leaves_no_file_and_exit_143(
    tmp_path, model_dir, suffix
):
    out = tmp_path / f"x.{suffix}"
    proc = _start_sample(model_dir, out)
    _wait_for_temp(proc, tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "terminated" in err
    assert list(tmp_path.iterdir()) == []


def test_sample__after_sigkill_the_next_run_removes_the_stale_file(
    tmp_path, model_dir, capsys
):
    out = tmp_path / "x.parquet"
    proc = _start_sample(model_dir, out)
    stale = _wait_for_temp(proc, tmp_path)
    proc.kill()
    proc.communicate(timeout=60)
    assert stale.exists()  # SIGKILL cannot clean up
    assert main(["sample", str(model_dir), "-n", "10", "-o", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.parquet"]


@pytest.mark.slow
def test_fuzz_inputs__fifty_hostile_tables_meet_the_targets():
    from benchmarks.fuzz_inputs import run

    res = run(50, seed=1)
    counts = res["counts"]
    assert sum(counts.values()) == 50
    assert counts["traceback"] == 0, res["failures"]
    assert counts["accepted_wrong"] == 0, res["failures"]
    assert counts["lost"] == 0, res["failures"]
    assert counts["messy"] == 0, res["messy"]
    assert counts["clean"] > 0


@pytest.mark.torch
def test_finetune_to_folder__an_interrupted_run_resumes_and_cleans_up(tmp_path):
    pytest.importorskip("tabpfn")
    from _finetune_data import TFM, table

    from finetune._run import _MARKER, finetune_to_folder

    X, y, _ = table(40)
    opts = dict(
        augment="none",
        max_steps=3,
        eval_every=1,
        n_estimators=1,
        n_estimators_train=1,
        checkpoint_every=1,
        tfm=TFM,
        verbose=False,
        random_state=0,  # a resume needs the same seed (None draws a fresh one)
    )

    def stop(rec):
        if rec.get("step") == 2:
            raise KeyboardInterrupt

    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        finetune_to_folder(X, y, run, callback=stop, **opts)
    assert {p.name for p in run.iterdir()} == {_MARKER, "checkpoint"}
    with pytest.raises(FileExistsError, match="other data or options"):
        finetune_to_folder(X, y, run, **{**opts, "max_steps": 4})
    est = finetune_to_folder(X, y, run, **opts)  # the same call resumes
    assert len(est.steps_) == 3
    assert {p.name for p in run.iterdir()} == {
        "model",
        "history.csv",
        "steps.csv",
        "curve.png",
        "report.md",
    }
