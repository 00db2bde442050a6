"""`write_dataset`: a sharded Parquet dataset, serially, one shard, or over Ray."""

from __future__ import annotations

import os
import signal
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from bridge import _dataset as ds
from bridge._table import checked_member, generation


def write_dataset(
    path: str | os.PathLike[str],
    key: jax.Array,
    model: Any,
    n: int,
    *,
    shards: int = 1,
    chunk: int = 100_000,
    member: int | None = None,
    shard_index: int | None = None,
    model_sha256: str | None = None,
    ray: bool = False,
    address: str | None = None,
    cpus_per_shard: float = 1,
    do: Mapping[str, Any] | None = None,
    classes: Any = None,
) -> dict[str, Any]:
    """Samples `n` rows into a folder of `shards` Parquet files plus a manifest.

    The rows are those `write_samples(file, key, model, n, chunk=chunk)` writes, in
    the same order, whatever `shards` is and wherever each shard is written: block
    b (``min(chunk, n)`` rows) draws with ``fold_in(key, b)`` and every shard holds
    whole blocks. Each shard's row groups hold one block. Rerunning the same call
    keeps shards whose file matches its record, rewrites missing or damaged ones
    (and removes a killed writer's temporary files), then writes ``_manifest.json``
    atomically, last.

    Args:
      path: the dataset folder (created; its parent must exist).
      key: PRNG key.
      model: a fitted `jaxscm.SCM` or `jaxscm.Ensemble` with columns.
      n: rows in all, >= 1.
      shards: number of part files K, between 1 and the number of blocks.
      chunk: rows per block (and row group).
      member: sample only this graph of an ensemble (0-based).
      shard_index: write only this shard (for a job array: each task writes its own
        shard; whichever finishes last writes the manifest).
      model_sha256: the digest recorded for the model (the CLI passes the model
        file's); None: a digest of the model's arrays and structure.
      ray: map the shards over a Ray cluster (`ray.init(address=address)`; None
        starts a local instance, unless Ray is already initialised).
      address: a Ray cluster to join ("auto", "ray://host:10001", ...).
      cpus_per_shard: CPUs Ray reserves per shard task.
      do: node name -> value held: the rows of `jaxscm.do(model, do)`.
      classes: "balanced" or a mapping label -> share of the target's classes:
        every block asks those class counts (`bridge._classes.ClassPlan`).
      Both are recorded in the manifest, so a rerun with other ones is refused.

    Returns:
      {"manifest": its path (None while other shards are missing), "written":
      {shard: why}, "kept": [shards left as they were]}.

    Raises:
      ValueError: naming the argument or folder: bad n/chunk/shards/member, a folder
        holding another run's dataset (model, key, rows, block size, shard count or
        member, interventions or class request differ; nothing is changed), a bad
        intervention or class request, or a damaged manifest.
      NotADirectoryError: `path` is a file.
      NonFiniteSampleError: (a ValueError) a sampled value is NaN or infinite.

    Examples:
      >>> import jax, tempfile, pandas as pd
      >>> from jaxscm import random_scm
      >>> d = tempfile.mkdtemp() + "/data"
      >>> out = write_dataset(d, jax.random.key(0), random_scm(jax.random.key(1), 3),
      ...                     10, shards=3, chunk=2)
      >>> sorted(out["written"]), len(pd.read_parquet(d))
      ([0, 1, 2], 10)
    """
    path = Path(path)
    member = checked_member(model, n, chunk, member)
    blocks = ds.plan(n, chunk, shards)
    if shard_index is not None and not 0 <= shard_index < shards:
        raise ValueError(
            f"--shard-index {shard_index} must be in [0, {shards}) (--num-shards)"
        )
    if ray and shard_index is not None:
        raise ValueError("--ray maps all shards; do not combine it with --shard-index")
    sha = model_sha256 or ds.model_digest(model)
    original = model
    model, plan = generation(key, model, min(chunk, n), member, do, classes)
    held = ds.do_record(original, dict(do) if do else None)
    want = ds.identity(key, model, n, chunk, shards, member, sha, do=held, classes=plan)
    ds.check_folder(path, want)
    path.mkdir(exist_ok=True)
    todo = range(shards) if shard_index is None else [shard_index]
    if ray:
        results = _map_ray(
            path, key, model, want, blocks, list(todo), address, cpus_per_shard
        )
    else:
        results = [ds.write_shard(path, key, model, want, blocks[i], i) for i in todo]
    written = {i: a for i, (_, a) in zip(todo, results, strict=True) if a != "kept"}
    kept = [i for i, (_, a) in zip(todo, results, strict=True) if a == "kept"]
    return {"manifest": ds.finish(path, want), "written": written, "kept": kept}


def _ray_shard(
    path: str,
    impl: str,
    key_data: np.ndarray,
    model: Any,
    want: dict[str, Any],
    blocks: tuple[int, int],
    i: int,
) -> tuple[dict[str, Any], str]:
    # Runs in a Ray worker; the compiled sampler stays cached in that process for
    # the next shard it is given (`bridge._table._draw` is module level).
    key = jax.random.wrap_key_data(key_data, impl=impl)
    return ds.write_shard(Path(path), key, model, want, blocks, i)


def _map_ray(
    path: Path,
    key: jax.Array,
    model: Any,
    want: dict[str, Any],
    blocks: list[tuple[int, int]],
    todo: list[int],
    address: str | None,
    cpus: float,
) -> list[tuple[dict[str, Any], str]]:
    try:
        import ray
    except ImportError as err:
        raise ValueError(
            "--ray needs Ray: pip install 'causalmixft[scale]' (or ray>=2.40)"
        ) from err
    started = not ray.is_initialized()
    if started:
        # ray.init installs its own SIGTERM handler, which aborts the process (exit
        # 134) before any `finally` runs; the caller's handler (the CLI unwinds on
        # SIGTERM as on Ctrl-C) is put back, so Ray is shut down cleanly.
        main = threading.current_thread() is threading.main_thread()
        previous = signal.getsignal(signal.SIGTERM) if main else None
        with warnings.catch_warnings():
            # Ray starts its daemons with fork + exec; JAX's warning about forking a
            # multithreaded process is about children that keep running Python.
            warnings.filterwarnings("ignore", "os.fork", RuntimeWarning)
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    try:
        # NumPy leaves travel through Ray's object store without a copy per task.
        ref = ray.put(jax.tree.map(np.asarray, model))
        task = ray.remote(num_cpus=cpus, max_retries=3)(_ray_shard)
        impl = str(jax.random.key_impl(key))
        data = np.asarray(jax.random.key_data(key))
        refs = [
            task.remote(str(path.resolve()), impl, data, ref, want, blocks[i], i)
            for i in todo
        ]
        return ray.get(refs)
    finally:
        if started:
            ray.shutdown()
