"""`bridge.write_dataset(..., ray=True)` on Ray's local instance."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import jax
import pyarrow.parquet as pq
import pytest

import bridge
import jaxscm

ray = pytest.importorskip("ray")

# ray.init starts its daemons with fork + exec; JAX warns about any fork of a process
# whose JAX threads run (other tests in this process started them).
pytestmark = pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def local_ray():
    """Ray's local instance with 2 CPUs, shut down after the module's tests."""
    # Workers import `bridge` from this checkout and run JAX on the CPU, like us.
    env = {"PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": env},
    )
    yield ray
    ray.shutdown()


def _model():
    # Linear mechanisms: each Ray worker compiles the sampler again, and a linear
    # one compiles in a fraction of an MLP's or tree's time.
    return jaxscm.stack(
        [jaxscm.random_scm(jax.random.key(i), 4, target=True) for i in range(2)]
    )


@pytest.mark.slow  # 15-35 s with ray.init on 2 cores; CI time
def test_write_dataset__two_shards_on_ray_equal_the_serial_run(local_ray, tmp_path):
    model, key = _model(), jax.random.key(5)
    serial = bridge.write_dataset(tmp_path / "a", key, model, 300, shards=2, chunk=32)
    # Two CPUs per shard: both shards go to one worker in turn, so the test pays for
    # one worker start and one compile (the slow test runs them side by side).
    on_ray = bridge.write_dataset(
        tmp_path / "b", key, model, 300, shards=2, chunk=32, ray=True, cpus_per_shard=2
    )
    assert sorted(on_ray["written"]) == [0, 1]
    assert pq.read_table(tmp_path / "b").equals(pq.read_table(tmp_path / "a"))
    assert (tmp_path / "b" / "_manifest.json").read_text() == (
        serial["manifest"].read_text()
    )
    assert bridge.verify_dataset(tmp_path / "b")["n_shards"] == 2


@pytest.mark.slow
def test_write_dataset__a_killed_ray_worker_is_retried_without_stray_files(
    local_ray, tmp_path
):
    model, key = _model(), jax.random.key(6)
    n, chunk = 400_000, 2_000
    ds = tmp_path / "ds"
    result: dict = {}

    def run() -> None:
        result["out"] = bridge.write_dataset(
            ds, key, model, n, shards=2, chunk=chunk, ray=True
        )

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 120
    while not (tmps := list(ds.glob(".part-00001.parquet.*.tmp"))):
        assert time.monotonic() < deadline
        time.sleep(0.005)
    pid = int(tmps[0].name.split(".")[-2])
    assert pid != os.getpid()
    os.kill(pid, signal.SIGKILL)  # the Ray worker writing shard 1
    thread.join(timeout=300)
    assert not thread.is_alive()
    assert sorted(result["out"]["written"]) == [0, 1]
    assert not [p for p in ds.rglob("*") if p.name.endswith(".tmp")]
    assert sorted(p.name for p in ds.glob("*.parquet")) == [
        "part-00000.parquet",
        "part-00001.parquet",
    ]
    bridge.write_dataset(tmp_path / "serial", key, model, n, shards=1, chunk=chunk)
    assert pq.read_table(ds).equals(pq.read_table(tmp_path / "serial"))
    assert bridge.verify_dataset(ds)["rows"] == n
