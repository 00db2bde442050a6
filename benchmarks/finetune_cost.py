"""Seconds per fine-tuning step with and without CausalMixFT, on the same data.

    OMP_NUM_THREADS=1 python -m benchmarks.finetune_cost [--steps 30] [--ratio 1]

On one credit dataset split (128 labelled rows, 96 of them training rows after the
validation hold-out, as in the demo) it times fine-tuning steps of the same TFM,
through the public estimator (`finetune.CausalMixFTClassifier`, whose `steps_` record
each step's seconds, row counts and synthetic-stream time):

1. plain fine-tuning: meta-batches of the 96 real rows;
2. CausalMixFT at `--ratio` r: the 96 real rows + r * 96 fresh synthetic rows from the
   fitted SCM ensemble (sampled, pooled and selected in one compiled call, mixed);
3. plain fine-tuning on a meta-batch of about the same size as 2, made of real rows
   only (128 * (1 + r) labelled rows of the same table, less the hold-out), to
   separate "more rows per step" from "rows that are synthetic".

It reports the median seconds per step (the first steps, which include the one-off
JAX compile of the ensemble sampler, are excluded and the compile is reported on
its own), the synthetic stream's share of a CausalMixFT step (drawing + decoding +
waiting for the prefetched batch), and the overhead of CausalMixFT over the
same-size plain step. Target: under 10 %. Numbers, not a test: it prints, it never
fails on them.
"""

from __future__ import annotations

import argparse
import platform
import time


def main(argv: list[str] | None = None) -> int:
    """Runs the three timings and prints the table."""
    __import__("jaxscm").enable_compilation_cache()  # README: CAUSALMIXFT_JAX_CACHE
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="credit-g")
    p.add_argument("--n-train", type=int, default=128)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3, help="steps left out of the median")
    p.add_argument("--ratio", type=float, default=1.0)
    p.add_argument("--n-dags", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tfm", default=None)
    p.add_argument("--members", choices=["pooled", "per_step"], default="pooled")
    p.add_argument(
        "--repeats",
        type=int,
        default=2,
        help="run the three configurations this many times, interleaved, "
        "so that load drift on a shared machine hits all of them alike",
    )
    p.add_argument(
        "--scm",
        default=None,
        help="a saved ensemble (jaxscm.save) to use instead of fitting one",
    )
    args = p.parse_args(argv)

    import jax
    import numpy as np
    import pandas as pd
    import tabpfn
    import torch

    import jaxscm
    from benchmarks.datasets import make_split
    from finetune import CausalMixFTClassifier

    torch.set_num_threads(1)
    split = make_split(args.dataset, args.n_train, seed=args.seed)
    base = dict(
        tfm=args.tfm,
        max_steps=args.steps,
        eval_every=10_000,
        patience=None,
        lr=3e-5,
        validation_fraction=0.25,
        members=args.members,
    )
    scm = jaxscm.load(args.scm) if args.scm else None
    # Extra real rows of the same table (from the test pool) for the same-size run:
    # after the estimator's 25 % validation hold-out it trains on about n * (1 + r).
    n_label = len(split.y_train)
    n_big = int(round(n_label * (1 + args.ratio)))
    big_X = pd.concat([split.X_train, split.X_test]).iloc[:n_big]
    big_y = pd.concat([split.y_train, split.y_test]).iloc[:n_big]
    runs = {
        "plain": ("none", split.X_train, split.y_train),
        "CausalMixFT": ("causalmix", split.X_train, split.y_train),
        "plain, same size": ("none", big_X, big_y),
    }
    per_step: dict[str, list[float]] = {k: [] for k in runs}
    rows: dict[str, tuple[int, int]] = {}
    syn_per_step: list[float] = []
    fit_s = 0.0
    for rep in range(args.repeats):
        for name, (augment, X, y) in runs.items():
            est = CausalMixFTClassifier(
                augment,
                random_state=args.seed + rep,
                ratio=args.ratio,
                n_dags=args.n_dags,
                scm=scm if augment == "causalmix" else None,
                **base,
            ).fit(X, y)
            if augment == "causalmix" and scm is None:
                scm, fit_s = est.scm_, est.scm_seconds_  # fitted once, then reused
            steps = est.steps_[args.warmup :]
            per_step[name] += [s["seconds"] for s in steps]
            rows[name] = (
                (steps[0]["n_real"], steps[0]["n_synthetic"]) if steps else (0, 0)
            )
            if augment == "causalmix":
                syn_per_step += [s["synthetic_seconds"] for s in steps]
    # The sampler alone, blocking: compile + first batch, then one batch's compute.
    n_syn = rows["CausalMixFT"][1]
    batch = -(-n_syn // scm.n_members) if args.members == "pooled" else n_syn
    draw = jax.jit(jaxscm.sample, static_argnums=2)
    t0 = time.perf_counter()
    draw(jax.random.key(99), scm, batch).block_until_ready()
    compile_s = time.perf_counter() - t0
    times = []
    for i in range(10):
        t0 = time.perf_counter()
        draw(jax.random.key(i), scm, batch).block_until_ready()
        times.append(time.perf_counter() - t0)
    print(
        f"{args.dataset}: {n_label} labelled rows (25 % held out for validation); "
        f"{args.steps} steps per run ({args.warmup} warm-up), {args.repeats} repeats"
    )
    print(
        f"SCM ensemble ({scm.n_members} DAGs) {'loaded' if args.scm else 'fit'} in "
        f"{fit_s:.1f} s; sampler compile + first batch {compile_s:.2f} s (once per "
        f"ensemble shape, not per step); one batch ({scm.n_members} x {batch} rows, "
        f"members={args.members}) {float(np.median(times)) * 1e3:.1f} ms of "
        "compute, blocking"
    )
    med = {k: float(np.median(v)) for k, v in per_step.items()}
    for name, m in med.items():
        real, syn_rows = rows[name]
        label = f"{name}, {real} real + {syn_rows} synthetic rows"
        print(f"  {label:50s} {m:.3f} s/step (median of {len(per_step[name])})")
    syn = float(np.median(syn_per_step))
    mixed_name = list(med)[1]
    share = syn / med[mixed_name]
    print(
        f"  drawing + decoding + mixing the synthetic rows: {syn * 1e3:.1f} ms/step "
        "(median; the sampler runs ahead asynchronously)"
    )
    names = list(med)
    plain, mixed, same = (med[k] for k in names)
    print(
        f"\nCausalMixFT vs plain, same real rows: {mixed / plain - 1:+.1%} per step "
        "(more rows per meta-batch)"
    )
    print(
        f"CausalMixFT vs plain, same meta-batch size: {mixed / same - 1:+.1%} per step"
    )
    print(f"synthetic stream share of a CausalMixFT step: {share:.1%} (target < 10%)")
    print(
        f"[{platform.processor() or platform.machine()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} thread), jax {jax.__version__} "
        f"({jax.devices()[0].platform}), tabpfn {tabpfn.__version__}]"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
