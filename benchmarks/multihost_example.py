"""Multi-host sampling with `jax.distributed`: every process writes its own rows.

Run the same command in every process (here two processes on one machine; on a
cluster, one per host, with the coordinator's address)::

    python -m benchmarks.multihost_example --coordinator localhost:12355 \
        --num-processes 2 --process-id 0 --out /tmp/parts &
    python -m benchmarks.multihost_example --coordinator localhost:12355 \
        --num-processes 2 --process-id 1 --out /tmp/parts

Each process joins JAX's multi-host runtime (`jax.distributed.initialize`), builds a
mesh over *all* processes' devices, and calls `jaxscm.sample_sharded` with the same
key and model. JAX runs one SPMD program; each process computes and holds only the
rows of its own devices (`jaxscm.local_rows`) and saves them as
`part-<process>.npz` (rows + their global offsets). No collective communication is
needed: with the default (partitionable threefry) key the random bits of a row
depend on the key and the row index only, so the concatenated parts are the rows a
single-device `jaxscm.sample(key, scm, n)` draws. On GPUs/TPUs the same script works
unchanged (the mesh then spans all accelerators of all hosts).

With ``--dataset`` the processes write one sharded Parquet dataset instead (the format
of ``causalmixft sample --shards``): process i of K writes shard i with
`bridge.write_dataset(..., shards=K, shard_index=i)`, drawing only its own blocks of
rows, and whichever finishes last writes the manifest. The rows then follow the
dataset's block rule, so the folder equals a one-process `bridge.write_dataset` (and
``causalmixft sample -o file.parquet``) run for the same key and ``--chunk``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Joins the runtime, samples this process's rows and saves them."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--coordinator", required=True, help="host:port of process 0")
    p.add_argument("--num-processes", type=int, required=True)
    p.add_argument("--process-id", type=int, required=True)
    p.add_argument("--out", type=Path, required=True, help="folder for part-<i>.npz")
    p.add_argument("--nodes", type=int, default=10)
    p.add_argument("--rows", type=int, default=4096, help="total rows (all processes)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--dataset",
        action="store_true",
        help="write shard <process-id> of a sharded Parquet dataset in --out",
    )
    p.add_argument("--chunk", type=int, default=100_000, help="rows per block")
    args = p.parse_args(argv)

    import jax
    import numpy as np
    from jax.sharding import Mesh

    jax.distributed.initialize(
        coordinator_address=args.coordinator,
        num_processes=args.num_processes,
        process_id=args.process_id,
    )
    from jaxscm import atomic_write, local_rows, random_scm, sample_sharded

    # The model must be identical in every process: build it from the same seed (or
    # `jaxscm.load` the same file).
    scm = random_scm(
        jax.random.key(args.seed), args.nodes, mechanism="mixed", noise="mixed"
    )
    if args.dataset:
        import bridge

        args.out.parent.mkdir(parents=True, exist_ok=True)
        out = bridge.write_dataset(
            args.out,
            jax.random.key(args.seed + 1),
            scm,
            args.rows,
            shards=jax.process_count(),
            shard_index=jax.process_index(),
            chunk=args.chunk,
        )
        print(
            f"process {jax.process_index()}/{jax.process_count()}: shard "
            f"{jax.process_index()} {out['written'] or 'kept'}; manifest "
            f"{out['manifest'] or 'waits for the other shards'}"
        )
        jax.distributed.shutdown()
        return 0
    mesh = Mesh(np.array(jax.devices()), ("rows",))  # every device of every process
    x = sample_sharded(jax.random.key(args.seed + 1), scm, args.rows, mesh)
    blocks = local_rows(x)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"part-{args.process_id}.npz"
    with atomic_write(target) as f:
        np.savez(
            f,
            rows=np.concatenate([b for _, b in blocks]),
            starts=np.array([idx[0].start or 0 for idx, _ in blocks]),
            stops=np.array([idx[0].stop or args.rows for idx, _ in blocks]),
            n_global_devices=len(jax.devices()),
        )
    print(
        f"process {args.process_id}/{args.num_processes}: "
        f"{len(jax.local_devices())} local of {len(jax.devices())} devices, "
        f"wrote {target}"
    )
    jax.distributed.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
