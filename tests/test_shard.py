"""Sharded sampling over a device mesh, and multi-process sampling via jax.distributed.

Several devices are simulated on the CPU with
`XLA_FLAGS=--xla_force_host_platform_device_count=8`, which must be set before JAX
starts, so those checks run in a subprocess.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from jax.sharding import Mesh

from jaxscm import random_scm, sample, stack
from jaxscm._shard import local_rows, sample_sharded, sharding_for

ROOT = Path(__file__).resolve().parents[1]

EIGHT_DEVICES = r"""
import json, jax, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from jaxscm import random_scm, sample, sample_noise, stack
from jaxscm._shard import sample_sharded

jit_sample = jax.jit(sample, static_argnums=2)
key = jax.random.key(1)
devs = np.array(jax.devices())
rows = Mesh(devs, ("rows",))
out = {"n_devices": len(devs)}

lin = random_scm(jax.random.key(0), 8, mechanism="linear", noise="mixed",
                 n_categorical=2, target=True)
x = sample_sharded(key, lin, 64, rows)
ref = np.asarray(jit_sample(key, lin, 64))
out["linear_bitwise"] = bool((np.asarray(x) == ref).all())
out["linear_shards"] = sorted({s.data.shape for s in x.addressable_shards})
out["linear_spec"] = list(x.sharding.spec)

mixed = random_scm(jax.random.key(0), 7, mechanism="mixed", noise="mixed",
                   n_categorical=2, target=True)
noise_fn = jax.jit(sample_noise, static_argnums=2,
                   out_shardings=NamedSharding(rows, P("rows", None)))
out["noise_bitwise"] = bool(
    (np.asarray(noise_fn(key, mixed, 64))
     == np.asarray(jax.jit(sample_noise, static_argnums=2)(key, mixed, 64))).all())
x = sample_sharded(key, mixed, 64, rows)
ref = np.asarray(jit_sample(key, mixed, 64))
out["mixed_maxdiff"] = float(np.abs(np.asarray(x) - ref).max())

ens = stack([random_scm(jax.random.key(i), 4, noise="mixed", target=True)
             for i in range(2)])
grid = Mesh(devs.reshape(2, 4), ("members", "rows"))
x = sample_sharded(key, ens, 32, grid)
ref = np.asarray(jit_sample(key, ens, 32))
out["ensemble_maxdiff"] = float(np.abs(np.asarray(x) - ref).max())
out["ensemble_shards"] = sorted({s.data.shape for s in x.addressable_shards})
out["ensemble_spec"] = list(x.sharding.spec)
x = sample_sharded(key, ens, 32, rows, member_axes=())  # rows only
out["ensemble_rows_maxdiff"] = float(np.abs(np.asarray(x) - ref).max())
try:
    sample_sharded(key, lin, 60, rows)
except ValueError as err:
    out["uneven_error"] = str(err)
print(json.dumps(out))
"""


def _run(
    code: str, env: dict[str, str], timeout: float = 240
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, JAX_PLATFORMS="cpu", OMP_NUM_THREADS="1", **extra)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), env.get("PYTHONPATH")])
    )
    return env


def test_sample_sharded__eight_devices_equal_single_device():
    proc = _run(
        EIGHT_DEVICES, _env(XLA_FLAGS="--xla_force_host_platform_device_count=8")
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["n_devices"] == 8
    # noise and non-MLP nodes: bitwise; MLP nodes: last-bit matmul blocking differences
    assert out["noise_bitwise"]
    assert out["linear_bitwise"]
    assert out["linear_spec"] == ["rows", None]
    assert out["linear_shards"] == [[8, 8]]
    assert out["mixed_maxdiff"] <= 1e-5
    assert out["ensemble_maxdiff"] <= 1e-5
    assert out["ensemble_rows_maxdiff"] <= 1e-5
    assert out["ensemble_spec"] == ["members", "rows", None]
    assert out["ensemble_shards"] == [[1, 8, 4]]
    assert "n=60" in out["uneven_error"]


def test_sample_sharded__one_device_mesh_equals_sample(key):
    scm = random_scm(jax.random.key(2), 5, mechanism="linear")
    mesh = Mesh(np.array(jax.devices()[:1]), ("rows",))
    x = sample_sharded(key, scm, 16, mesh)
    want = jax.jit(sample, static_argnums=2)(key, scm, 16)
    np.testing.assert_array_equal(np.asarray(x), np.asarray(want))
    [(index, block)] = local_rows(x)
    assert index[0] == slice(None) or (index[0].start in (None, 0))
    np.testing.assert_array_equal(block, np.asarray(want))


def test_sample_sharded__compiles_once_per_structure(key):
    from jaxscm import _shard

    a = random_scm(jax.random.key(3), 5, mechanism="mixed")
    b = jax.tree.map(lambda v: v * 1.5 if v.dtype.kind == "f" else v, a)
    mesh = Mesh(np.array(jax.devices()[:1]), ("rows",))
    x = sample_sharded(key, a, 16, mesh)
    compiled = _shard._sharded_fn(sharding_for(a, mesh), 16)
    size = compiled._cache_size()
    y = sample_sharded(jax.random.fold_in(key, 1), b, 16, mesh)
    assert compiled._cache_size() == size  # other parameters and key: no recompile
    np.testing.assert_array_equal(np.asarray(x), np.asarray(sample(key, a, 16)))
    want = sample(jax.random.fold_in(key, 1), b, 16)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(want))


def test_sharding_for__rejects_unknown_or_repeated_axes():
    scm = random_scm(jax.random.key(2), 3)
    mesh = Mesh(np.array(jax.devices()[:1]), ("rows",))
    with pytest.raises(ValueError, match="'cols' is not in the mesh"):
        sharding_for(scm, mesh, row_axes=("cols",))
    with pytest.raises(ValueError, match="member_axes applies to an Ensemble"):
        sharding_for(scm, mesh, member_axes=("rows",))
    ens = stack([scm, scm])
    with pytest.raises(ValueError, match="used twice"):
        sharding_for(ens, mesh, row_axes=("rows",), member_axes=("rows",))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two JAX processes start and compile: ~35 s on the loaded 2-core box
def test_multihost_example__two_processes_equal_single_device(tmp_path):
    """Two local processes joined by jax.distributed (JAX's CPU runtime supports it)."""
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.multihost_example",
        "--coordinator",
        f"localhost:{port}",
        "--num-processes",
        "2",
        "--out",
        str(tmp_path),
        "--nodes",
        "8",
        "--rows",
        "64",
        "--seed",
        "3",
    ]
    procs = [
        subprocess.Popen(
            cmd + ["--process-id", str(i)],
            cwd=ROOT,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        results = [p.communicate(timeout=180) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err[-3000:]
    parts = [np.load(tmp_path / f"part-{i}.npz") for i in range(2)]
    assert [int(p["n_global_devices"]) for p in parts] == [2, 2]
    assert [(int(p["starts"][0]), int(p["stops"][0])) for p in parts] == [
        (0, 32),
        (32, 64),
    ]
    got = np.concatenate([p["rows"] for p in parts])
    scm = random_scm(jax.random.key(3), 8, mechanism="mixed", noise="mixed")
    want = np.asarray(jax.jit(sample, static_argnums=2)(jax.random.key(4), scm, 64))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.slow  # two JAX processes start and compile
def test_multihost_example__dataset_mode_equals_one_process_dataset(tmp_path):
    """Each jax.distributed process writes its shard; the folder equals a serial run."""
    import pyarrow.parquet as pq

    import bridge

    port = _free_port()
    cmd = [sys.executable, "-m", "benchmarks.multihost_example", "--coordinator"]
    cmd += [f"localhost:{port}", "--num-processes", "2", "--out", str(tmp_path / "ds")]
    cmd += ["--nodes", "6", "--rows", "1000", "--seed", "3", "--dataset"]
    cmd += ["--chunk", "64"]
    procs = [
        subprocess.Popen(
            cmd + ["--process-id", str(i)],
            cwd=ROOT,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        results = [p.communicate(timeout=180) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err[-3000:]
    man = bridge.verify_dataset(tmp_path / "ds")
    assert [s["rows"] for s in man["shards"]] == [[0, 512], [512, 1000]]
    scm = random_scm(jax.random.key(3), 6, mechanism="mixed", noise="mixed")
    bridge.write_samples(
        tmp_path / "one.parquet", jax.random.key(4), scm, 1000, chunk=64
    )
    assert pq.read_table(tmp_path / "ds").equals(
        pq.read_table(tmp_path / "one.parquet")
    )
