"""Sharded Parquet datasets (`causalmixft sample --shards`, `bridge.write_dataset`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import bridge
import jaxscm
from finetune.cli import main
from jaxscm.fitting._fit_scm import FitInfo

ROOT = Path(__file__).resolve().parents[1]


def _model_dir(path: Path, seed: int = 0) -> Path:
    """A fitted-model folder of a 3-graph ensemble with a categorical target."""
    scms = [
        jaxscm.random_scm(jax.random.key(seed + i), 4, target=True, noise="mixed")
        for i in range(3)
    ]
    ens = jaxscm.stack(scms)
    info = FitInfo(
        columns=ens.columns,
        edge_probs=np.full((4, 4), 0.5),
        dags=np.asarray(ens.adjacency, bool),
        mechanisms=({}, {}, {}),
        timings={"total": 1.0},
        missing_rate={},
        dropped_rows=0,
        n_rows=10,
        options={},
    )
    return jaxscm.save_fit(path, ens.with_info(info))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(model folder, reference single-file output of 1000 rows, chunk 64, seed 3)."""
    tmp = tmp_path_factory.mktemp("dataset")
    model = _model_dir(tmp / "model")
    ref = tmp / "one.parquet"
    argv = ["sample", str(model), "-n", "1000", "-o", str(ref), "--chunk", "64"]
    assert main([*argv, "--seed", "3"]) == 0
    return model, ref


def _sharded(model: Path, out: Path, *extra: str) -> int:
    argv = ["sample", str(model), "-n", "1000", "-o", str(out), "--chunk", "64"]
    return main([*argv, "--seed", "3", *extra])


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("k", [1, 3, 7])
def test_sample_cli__shards_equal_the_single_file_row_for_row(setup, tmp_path, k):
    model, ref = setup
    assert _sharded(model, tmp_path / "ds", "--shards", str(k)) == 0
    got, want = pq.read_table(tmp_path / "ds"), pq.read_table(ref)
    assert got.equals(want)
    assert got.schema.equals(want.schema)
    frame = pd.read_parquet(tmp_path / "ds")
    assert frame.equals(pd.read_parquet(ref))
    assert set(frame["y"].astype(str)) <= set(
        jaxscm.load_fit(model).columns[-1].categories
    )
    man = bridge.verify_dataset(tmp_path / "ds")
    assert [s["file"] for s in man["shards"]] == [
        f"part-{i:05d}.parquet" for i in range(k)
    ]
    counts = [s["n_rows"] for s in man["shards"]]
    assert sum(counts) == 1000
    assert man["block_rows"] == 64
    assert man["n_shards"] == k
    if k > 1:
        assert len(set(counts)) > 1  # 16 blocks, the last one cut: uneven shards
    for s in man["shards"]:
        meta = pq.read_metadata(tmp_path / "ds" / s["file"])
        assert meta.num_rows == s["n_rows"]
        assert max(meta.row_group(g).num_rows for g in range(meta.num_row_groups)) <= 64
    assert man["key"] == {"impl": "threefry2x32", "data": [0, 3]}


def test_sample_cli__resume_keeps_good_shards_rewrites_the_rest(
    setup, tmp_path, capsys
):
    model, ref = setup
    ds = tmp_path / "ds"
    assert _sharded(model, ds, "--shards", "3") == 0
    kept = (ds / "part-00000.parquet").stat().st_mtime_ns
    raw = bytearray((ds / "part-00001.parquet").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (ds / "part-00001.parquet").write_bytes(bytes(raw))
    (ds / "part-00002.parquet").unlink()
    (ds / "_manifest.json").unlink()
    (ds / ".part-00002.parquet.999999999.tmp").write_bytes(b"half a shard")
    capsys.readouterr()
    assert _sharded(model, ds, "--shards", "3") == 0
    out = capsys.readouterr().out
    assert "shard 1: wrote (damaged" in out
    assert "shard 2: wrote (missing)" in out
    assert "kept 1 shard" in out
    assert (ds / "part-00000.parquet").stat().st_mtime_ns == kept
    assert not [p for p in ds.rglob("*") if p.name.endswith(".tmp")]
    assert pq.read_table(ds).equals(pq.read_table(ref))
    assert len(bridge.verify_dataset(ds)["shards"]) == 3


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--seed", "4"], "key:"),
        (["-n", "999"], "rows:"),
        (["--shards", "4"], "n_shards:"),
        (["--chunk", "50"], "block_rows:"),
    ],
)
def test_sample_cli__refuses_another_run_and_changes_nothing(
    setup, tmp_path_factory, capsys, extra, named
):
    model, _ = setup
    ds = tmp_path_factory.mktemp("refuse") / "ds"
    assert _sharded(model, ds, "--shards", "3") == 0
    before = _snapshot(ds)
    capsys.readouterr()
    argv = ["sample", str(model), "-n", "1000", "-o", str(ds), "--chunk", "64"]
    argv += ["--seed", "3", "--shards", "3"]
    for flag, value in zip(extra[::2], extra[1::2], strict=True):
        argv[argv.index(flag) + 1] = value
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert named in err
    assert "nothing was changed" in err
    assert _snapshot(ds) == before


def test_sample_cli__refuses_another_model(setup, tmp_path, capsys):
    model, _ = setup
    other = _model_dir(tmp_path / "other", seed=10)
    ds = tmp_path / "ds"
    assert _sharded(model, ds, "--shards", "2", "--shard-index", "1") == 0
    before = _snapshot(ds)
    assert not (ds / "_manifest.json").exists()  # only the shard record says whose
    capsys.readouterr()
    assert _sharded(other, ds, "--shards", "2") == 2
    assert "model_sha256:" in capsys.readouterr().err
    assert _snapshot(ds) == before


def test_verify_dataset__names_a_tampered_shard_or_manifest(setup, tmp_path, capsys):
    model, _ = setup
    ds = tmp_path / "ds"
    assert _sharded(model, ds, "--shards", "3") == 0
    part = ds / "part-00001.parquet"
    good = part.read_bytes()
    raw = bytearray(good)
    raw[100] ^= 0x01
    part.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"part-00001\.parquet differs from"):
        bridge.verify_dataset(ds)
    part.write_bytes(good)
    man = ds / "_manifest.json"
    man.write_text(man.read_text().replace('"rows": 1000', '"rows": 1001'))
    with pytest.raises(ValueError, match=r"_manifest\.json fails its checksum"):
        bridge.verify_dataset(ds)
    capsys.readouterr()
    assert _sharded(model, ds, "--shards", "3") == 2
    assert "_manifest.json fails its checksum" in capsys.readouterr().err


def test_sample_cli__shard_index_runs_build_one_dataset(setup, tmp_path, capsys):
    model, ref = setup
    ds = tmp_path / "ds"
    for i in (2, 0):
        assert _sharded(model, ds, "--num-shards", "3", "--shard-index", str(i)) == 0
        assert not (ds / "_manifest.json").exists()
    assert "waits for the other shards" in capsys.readouterr().out
    assert _sharded(model, ds, "--num-shards", "3", "--shard-index", "1") == 0
    assert (ds / "_manifest.json").is_file()
    assert pq.read_table(ds).equals(pq.read_table(ref))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--shards", "17"], "1000 rows make 16 blocks of 64 rows"),
        (["--shard-index", "0"], "--shard-index and --ray need --shards"),
        (["--ray"], "--shard-index and --ray need --shards"),
        (["--shards", "3", "--shard-index", "3"], "--shard-index 3 must be in [0, 3)"),
        (["--shards", "2", "--address", "auto"], "--address needs --ray"),
    ],
)
def test_sample_cli__bad_shard_flags_exit_2_and_write_nothing(
    setup, tmp_path, capsys, extra, message
):
    model, _ = setup
    assert _sharded(model, tmp_path / "ds", *extra) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()


def test_sample_cli__refuses_a_folder_of_other_files(setup, tmp_path, capsys):
    model, _ = setup
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "notes.txt").write_text("mine")
    assert _sharded(model, tmp_path / "ds", "--shards", "2") == 2
    assert "'notes.txt', which is no part of" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["notes.txt"]


@pytest.mark.slow
def test_sample_cli__a_killed_run_resumes_without_partial_or_stray_files(
    setup, tmp_path
):
    model, _ = setup
    ds = tmp_path / "ds"
    n, chunk = 400_000, 2_000
    argv = ["sample", str(model), "-n", str(n), "-o", str(ds), "--chunk", str(chunk)]
    argv += ["--shards", "4"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "finetune.cli", *argv], env=env)
    deadline = time.monotonic() + 120
    while not list(ds.glob(".part-00001.parquet.*.tmp")):
        assert proc.poll() is None
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (ds / "part-00000.parquet").is_file()
    assert not (ds / "part-00001.parquet").exists()
    assert list(ds.glob(".part-00001.parquet.*.tmp"))  # what the kill left behind
    assert main(argv) == 0
    assert not [p for p in ds.rglob("*") if p.name.endswith(".tmp")]
    assert sorted(p.name for p in ds.glob("*.parquet")) == [
        f"part-{i:05d}.parquet" for i in range(4)
    ]
    one = tmp_path / "one.parquet"
    assert (
        main(
            ["sample", str(model), "-n", str(n), "-o", str(one), "--chunk", str(chunk)]
        )
        == 0
    )
    assert pq.read_table(ds).equals(pq.read_table(one))
    assert bridge.verify_dataset(ds)["rows"] == n


@pytest.mark.parametrize("k", [1, 3])
def test_sample_cli__do_and_classes_shards_equal_the_single_file(setup, tmp_path, k):
    model, _ = setup
    extra = ("--do", "x0=1.5", "--classes", "c0=0.5,c1=0.25,c2=0.25")
    one = tmp_path / "one.parquet"
    assert _sharded(model, one, *extra) == 0
    assert _sharded(model, tmp_path / "ds", "--shards", str(k), *extra) == 0
    got, want = pd.read_parquet(tmp_path / "ds"), pd.read_parquet(one)
    assert got.equals(want)
    assert (got["x0"] == np.float32(1.5)).all()
    # every block of 64 rows asks the counts 32/16/16, shuffled by its index
    for start in range(0, 1000 - 64, 64):
        counts = got["y"].iloc[start : start + 64].value_counts()
        assert counts.to_dict() == {"c0": 32, "c1": 16, "c2": 16}
    first, second = got["y"].iloc[:64].tolist(), got["y"].iloc[64:128].tolist()
    assert first != second


@pytest.mark.parametrize(("node", "value"), [("x1", -2.0), ("x0", 3.0)])
def test_sample__do_is_the_intervened_model_and_non_descendants_keep(
    setup, tmp_path, node, value
):
    model, ref = setup
    ens = jaxscm.load_fit(model)
    out = tmp_path / "do.parquet"
    assert _sharded(model, out, "--do", f"{node}={value}") == 0
    direct = tmp_path / "direct.parquet"
    held = jaxscm.do(ens, {node: value})
    bridge.write_samples(direct, jax.random.key(3), held, 1000, chunk=64)
    got = pd.read_parquet(out)
    assert got.equals(pd.read_parquet(direct))
    assert (got[node] == value).all()
    # the columns no member's `node` reaches are the same draws as without it;
    # its descendants change (here x1 has none, x0 reaches every other column)
    adj = np.asarray(ens.adjacency).astype(bool).any(axis=0)
    reach = np.linalg.matrix_power(adj | np.eye(4, dtype=bool), 4)[
        ens.nodes.index(node)
    ]
    plain = pd.read_parquet(ref)
    for j, c in enumerate(ens.nodes):
        if c != node:
            assert got[c].equals(plain[c]) == (not reach[j]), c


def test_sample_cli__rerun_with_other_do_or_classes_is_refused(setup, tmp_path, capsys):
    model, _ = setup
    ds = tmp_path / "ds"
    assert _sharded(model, ds, "--shards", "2", "--do", "x0=1") == 0
    before = _snapshot(ds)
    capsys.readouterr()
    assert _sharded(model, ds, "--shards", "2", "--do", "x0=2") == 2
    assert "do: folder" in capsys.readouterr().err
    assert _sharded(model, ds, "--shards", "2") == 2
    assert (
        _sharded(model, ds, "--shards", "2", "--do", "x0=1", "--classes", "balanced")
        == 2
    )
    assert "classes: folder null" in capsys.readouterr().err
    assert _snapshot(ds) == before
    assert _sharded(model, ds, "--shards", "2", "--do", "x0=1.0") == 0  # same value
    assert "kept 2 shard(s)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--do", "zz=1"), "cannot intervene on 'zz'"),
        (("--do", "x0"), "give column=value"),
        (("--do", "x0=1", "--do", "x0=2"), "names column 'x0' twice"),
        (("--do", "x0=high"), "give a number"),
        (("--do", "y=nope"), "unknown category 'nope'"),
        (("--do", "y=c0", "--classes", "balanced"), "held by an intervention"),
        (("--classes", "nope=1"), "class 'nope' is not a training class"),
        (("--classes", "c0=-1"), "label=share pairs"),
        (("--classes", "balanced", "--member", "1"), "drop the member"),
    ],
)
def test_sample_cli__bad_do_or_classes_exit_2_and_write_nothing(
    setup, tmp_path, capsys, extra, message
):
    model, _ = setup
    for out in (tmp_path / "x.csv", tmp_path / "ds"):
        shards = ("--shards", "2") if out.suffix == "" else ()
        assert _sharded(model, out, *shards, *extra) == 2
        assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
