"""`fit_scm` after discovery: graphs, the target's mechanism, fits, distill, stack.

Split from `jaxscm.fitting._fit_scm` so that `benchmarks.label_mechanism` can compare
`LabelOptions` on one discovery and one cache of node fits per table.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxscm.fitting._label import LabelOptions
from jaxscm.fitting._marginals import MarginalOptions

if TYPE_CHECKING:
    from jaxscm._ensemble import Ensemble


def fit_on(
    table: Any,
    probs: np.ndarray,
    *,
    n_dags: int,
    seed: int,
    req: np.ndarray,
    forb: np.ndarray,
    mechanisms: str,
    label: LabelOptions,
    dtype: Any,
    progress: bool,
    n_jobs: int | None,
    timings: dict[str, float],
    t_all: float,
    options: dict[str, Any],
    cache: dict[Any, Any] | None = None,
    marginals: MarginalOptions | None = None,
) -> Ensemble:
    """`fit_scm` after discovery: graphs, label rule, node fits, distill, stack.

    `cache` (node fits) may be shared between calls on the same table, seed and
    mechanisms (`benchmarks.label_mechanism` compares label rules this way).
    `marginals`: as in `fit_scm` (None: `MarginalOptions.off()`).
    """
    import jax
    import jax.numpy as jnp
    from tqdm.auto import tqdm

    from jaxscm._dags import sample_dags
    from jaxscm._ensemble import stack
    from jaxscm.distillation._distill import distill
    from jaxscm.fitting._fit import fit, fit_nodes
    from jaxscm.fitting._fit_scm import FitInfo
    from jaxscm.fitting._label import calibrate_shares, widen_parents

    marginals = MarginalOptions.off() if marginals is None else marginals
    names = [c.name for c in table.columns]
    target = next((j for j, c in enumerate(table.columns) if c.is_target), None)
    t = time.perf_counter()
    key = jax.random.fold_in(jax.random.key(seed), 1)
    discovered = np.asarray(
        sample_dags(key, probs, n_dags, required=req, forbidden=forb, nodes=names)
    )
    dags = discovered
    if target is not None:
        dags = widen_parents(discovered, probs, target, label, forbidden=forb)
    timings["sample_dags"] = time.perf_counter() - t
    tc = label.classifier if target is not None else "same"

    # Every distinct (node, parents) over all graphs is fitted once, in parallel;
    # the per-graph `fit` below then only assembles the models from the cache.
    t = time.perf_counter()
    cache = {} if cache is None else cache
    cache = fit_nodes(
        table,
        dags,
        mechanisms=mechanisms,
        seed=seed,
        cache=cache,
        n_jobs=n_jobs,
        target_classifier=tc,
        marginals=marginals,
    )
    timings["fit"] = time.perf_counter() - t
    scms, chosen = [], []
    timings["distill"] = 0.0
    # disable=None: no bar when stderr is not a terminal (logs, pipes)
    for dag in tqdm(dags, desc="fit + distill", disable=None if progress else True):
        t = time.perf_counter()
        model = fit(
            table,
            dag,
            mechanisms=mechanisms,
            seed=seed,
            cache=cache,
            target_classifier=tc,
            marginals=marginals,
        )
        timings["fit"] += time.perf_counter() - t
        t = time.perf_counter()
        scms.append(distill(model, columns=table.columns, dtype=dtype))
        timings["distill"] += time.perf_counter() - t
        chosen.append(
            {str(v): str(model.graph.nodes[v]["jaxscm_mechanism"]) for v in names}
        )
    report: dict[str, Any] = {
        "added_edges": np.argwhere(dags & ~discovered).tolist(),
        "share_train": None,
        "share_synth": None,
        "offsets": None,
    }
    if target is not None:
        codes = table.codes[:, target].astype(np.int64)
        k = table.columns[target].n_categories
        share = np.bincount(codes, minlength=k)[:k] / codes.shape[0]
        report["share_train"] = share.tolist()
    if target is not None and label.class_share:
        t = time.perf_counter()
        key = jax.random.fold_in(jax.random.key(seed), 2)
        scms, offsets, synth = calibrate_shares(
            scms, share, key, label, columns=table.columns
        )
        report["share_synth"] = synth.tolist()
        report["offsets"] = offsets.tolist()
        timings["class_share"] = time.perf_counter() - t
    t = time.perf_counter()
    ensemble = stack(scms, columns=table.columns)
    timings["stack"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_all
    info = FitInfo(
        columns=table.columns,
        edge_probs=probs,
        dags=dags,
        mechanisms=tuple(chosen),
        timings=timings,
        missing_rate=table.missing_rate,
        dropped_rows=table.dropped_rows,
        n_rows=int(table.codes.shape[0]),
        options={
            "target": None if target is None else names[target],
            "n_dags": n_dags,
            "seed": seed,
            **{k: v for k, v in options.items() if k not in ("required", "forbidden")},
            "mechanisms": mechanisms,
            "marginals": marginals.to_json(),
            "required": options.get("required", []),
            "forbidden": options.get("forbidden", []),
            "dtype": str(jnp.dtype(dtype)),
            "label": label.to_json(),
            "label_report": report,
        },
    )
    return ensemble.with_info(info)
