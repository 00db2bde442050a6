"""Seconds per fine-tuning step with and without CausalMixFT, on the same data.

    OMP_NUM_THREADS=1 python -m benchmarks.finetune_cost [--steps 30] [--ratio 1]

On one credit dataset split (128 labelled rows, 96 of them training rows after the
validation hold-out, as in the demo) it times fine-tuning steps of the same TFM:

1. plain fine-tuning: meta-batches of the 96 real rows;
2. CausalMixFT at `--ratio` r: the 96 real rows + r * 96 fresh synthetic rows from the
   fitted SCM ensemble (sampled, pooled and selected in one compiled call, mixed);
3. plain fine-tuning on a meta-batch of the same size as 2, made of real rows only
   (96 * (1 + r) rows of the same table), to separate "more rows per step" from
   "rows that are synthetic".

It reports the median seconds per step (the first steps, which include the one-off
JAX compile of the ensemble sampler, are excluded and the compile is reported on
its own), the synthetic stream's share of a CausalMixFT step (drawing + selecting +
waiting for the prefetched batch), and the overhead of CausalMixFT over the
same-size plain step. Target: under 10 %. Numbers, not a test: it prints, it never
fails on them.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time


def main(argv: list[str] | None = None) -> int:
    """Runs the three timings and prints the table."""
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
    from finetune._config import FinetuneConfig
    from finetune._encode import TableEncoder
    from finetune._estimator import _validation_split
    from finetune._finetune import finetune
    from finetune._mixing import SyntheticRows
    from finetune._tfm import load_tfm

    torch.set_num_threads(1)
    split = make_split(args.dataset, args.n_train, seed=args.seed)
    enc = TableEncoder.fit(split.X_train, split.y_train)
    Xe, ye = enc.transform(split.X_train), enc.encode_labels(split.y_train)
    tr, va = _validation_split(ye, 0.25, args.seed, enc)
    n = len(tr)
    print(
        f"{args.dataset}: {len(ye)} labelled rows -> {n} training + {len(va)} "
        f"validation rows; {args.steps} steps per run ({args.warmup} warm-up)"
    )

    t0 = time.perf_counter()
    if args.scm:
        scm = jaxscm.load(args.scm)
    else:
        frame = split.X_train.iloc[tr].reset_index(drop=True).copy()
        frame["target"] = split.y_train.iloc[tr].map(str).astype("category").to_numpy()
        kinds = {
            f: "categorical" if c else "numeric"
            for f, c in zip(enc.features, enc.categories, strict=True)
        }
        scm = jaxscm.fit_scm(
            frame,
            target="target",
            n_dags=args.n_dags,
            seed=args.seed,
            kinds={**kinds, "target": "categorical"},
            progress=False,
        )
    fit_s = time.perf_counter() - t0
    selection, decode = _selection_or_decoder(enc, scm)
    rows = selection if selection is not None else decode
    n_syn = int(round(args.ratio * n))
    t0 = time.perf_counter()
    src = SyntheticRows(jax.random.key(99), scm, rows, n_syn, members=args.members)
    src.draw(np.random.default_rng(0), n_syn)
    compile_s = time.perf_counter() - t0
    from bridge._stream import batch_fn

    times = []
    for i in range(10):  # the sampler's own CPU time per batch, blocking, isolated
        t0 = time.perf_counter()
        batch_fn(jax.random.key(98), i, scm, src.batch_size).block_until_ready()
        times.append(time.perf_counter() - t0)
    sample_s = float(np.median(times))
    draws = []
    for i in range(10):  # a whole step's draw (sample, pool, select, to NumPy)
        t0 = time.perf_counter()
        src.draw(np.random.default_rng(i), n_syn)
        draws.append(time.perf_counter() - t0)
    print(
        f"SCM ensemble ({scm.n_members} DAGs) {'loaded' if args.scm else 'fit'} in "
        f"{fit_s:.1f} s; sampler compile + first batch {compile_s:.2f} s (once per "
        f"ensemble shape, not per step); one batch ({scm.n_members} x "
        f"{src.batch_size} rows, members={args.members}) {sample_s * 1e3:.1f} ms of "
        f"compute, blocking; one step's rows (sampled, pooled, "
        f"{'selected in the compiled call' if selection else 'decoded in NumPy'}) "
        f"{float(np.median(draws)) * 1e3:.1f} ms, blocking"
    )

    # Extra real rows of the same table (from the test pool) for the same-size run.
    pool_X = pd.concat([split.X_train.iloc[tr], split.X_test])
    pool_y = pd.concat([split.y_train.iloc[tr], split.y_test])
    big_X, big_y = (
        enc.transform(pool_X)[: n + n_syn],
        enc.encode_labels(pool_y)[: n + n_syn],
    )

    tfm = load_tfm(args.tfm)
    base = dict(
        max_steps=args.steps, eval_every=10_000, patience=None, lr=3e-5, seed=args.seed
    )
    runs = {
        f"plain, {n} real rows": (FinetuneConfig(ratio=0.0, **base), Xe[tr], ye[tr]),
        f"CausalMixFT, {n} real + {n_syn} synthetic": (
            FinetuneConfig(ratio=args.ratio, **base),
            Xe[tr],
            ye[tr],
        ),
        f"plain, {n + n_syn} real rows (same size)": (
            FinetuneConfig(ratio=0.0, **base),
            big_X,
            big_y,
        ),
    }
    per_step: dict[str, list[float]] = {k: [] for k in runs}
    syn_per_step: list[float] = []
    for rep in range(args.repeats):
        for name, (cfg, X, y) in runs.items():
            res = finetune(
                tfm,
                X,
                y,
                config=dataclasses.replace(cfg, seed=args.seed + rep),
                n_classes=len(enc.classes),
                categorical=enc.categorical_indices,
                X_val=Xe[va],
                y_val=ye[va],
                scm=scm,
                decode=decode,
                selection=selection,
            )
            steps = res.steps[args.warmup :]
            per_step[name] += [s["seconds"] for s in steps]
            if cfg.ratio > 0:
                syn_per_step += [s["synthetic_seconds"] for s in steps]
    med = {k: float(np.median(v)) for k, v in per_step.items()}
    for name, m in med.items():
        print(f"  {name:45s} {m:.3f} s/step (median of {len(per_step[name])})")
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


def _selection_or_decoder(enc, scm):
    """(Selection, None) when the SCM's codes are the encoder's, else (None, decoder).

    The compiled path needs one schema (the SCM's category and class order equal the
    encoder's); other SCMs go through the NumPy decoder that remaps codes by label.
    """
    import numpy as np

    from finetune._encode import Selection

    names = [c.name for c in scm.columns]
    target = next(i for i, c in enumerate(scm.columns) if c.is_target)
    same = list(scm.columns[target].categories) == [str(c) for c in enc.classes]
    for f, cats in zip(enc.features, enc.categories, strict=True):
        same = (
            same
            and f in names
            and list(scm.columns[names.index(f)].categories) == [str(c) for c in cats]
        )
    if not same:
        return None, enc.synthetic_decoder(scm.columns)
    features = np.array([names.index(f) for f in enc.features], np.int64)
    fill = np.zeros(len(features), np.float32)
    return Selection(features, fill, target, len(enc.classes)), None


if __name__ == "__main__":
    raise SystemExit(main())
