"""One call from a table to a sampleable SCM ensemble, and model directories.

`fit_scm` chains the front end: schema and missing values (`jaxscm._table`),
bootstrap PC/FCI edge probabilities (`discover`), k acyclic graphs (`sample_dags`),
a DoWhy fit per graph (`fit`, node fits shared between graphs with the same parents),
exact distillation (`distill`) and stacking (`stack`). The result is a
`jaxscm.Ensemble` over the table's columns in table order (target flagged), so
`jaxscm.sample(key, model, n)` gives (k, n, d) codes that `bridge.to_frame` decodes.

A model directory (`save_fit` / `load_fit`) holds ``model.npz`` (the ensemble, via
`jaxscm.save`: arrays + JSON, no pickle) and ``fit.json`` (`FitInfo`: schema, edge
probabilities, graphs, chosen mechanisms, timings, missing rates, options). It is
written into a temporary sibling directory and renamed into place, so an error never
leaves a half-written model directory.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from jaxscm._schema import Column

FIT_FORMAT = "jaxscm-fit"
FIT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class FitInfo:
    """What `fit_scm` did, for reports and for reloading.

    Attributes:
      columns: the schema, table order.
      edge_probs: (d, d) P(i -> j) from discovery.
      dags: (k, d, d) the sampled graphs, `[b, i, j]` for i -> j.
      mechanisms: per graph, node -> predictor chosen ("empirical", "linear", "hgb",
        "auto").
      timings: seconds per stage: "schema", "discover", "sample_dags", "fit"
        (DoWhy), "distill", "stack", "total".
      missing_rate: per column, the fraction of missing entries that were imputed.
      dropped_rows: rows dropped for a missing target.
      n_rows: rows used for fitting.
      options: the options of the call (seed, method, ...).
    """

    columns: tuple[Column, ...]
    edge_probs: np.ndarray
    dags: np.ndarray
    mechanisms: tuple[dict[str, str], ...]
    timings: dict[str, float]
    missing_rate: dict[str, float]
    dropped_rows: int
    n_rows: int
    options: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "format": FIT_FORMAT,
            "version": FIT_VERSION,
            "columns": [c.to_json() for c in self.columns],
            "edge_probs": np.asarray(self.edge_probs, float).tolist(),
            "dags": np.asarray(self.dags, int).tolist(),
            "mechanisms": list(self.mechanisms),
            "timings": self.timings,
            "missing_rate": self.missing_rate,
            "dropped_rows": self.dropped_rows,
            "n_rows": self.n_rows,
            "options": self.options,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FitInfo:
        """Inverse of `to_json`; raises ValueError on another format or version."""
        if d.get("format") != FIT_FORMAT or d.get("version") != FIT_VERSION:
            raise ValueError(
                f"not a {FIT_FORMAT} v{FIT_VERSION} record (format "
                f"{d.get('format')!r}, "
                f"version {d.get('version')!r})"
            )
        return cls(
            columns=tuple(Column.from_json(c) for c in d["columns"]),
            edge_probs=np.asarray(d["edge_probs"], float),
            dags=np.asarray(d["dags"], bool),
            mechanisms=tuple(dict(m) for m in d["mechanisms"]),
            timings=dict(d["timings"]),
            missing_rate=dict(d["missing_rate"]),
            dropped_rows=int(d["dropped_rows"]),
            n_rows=int(d["n_rows"]),
            options=dict(d["options"]),
        )


def fit_scm(
    df: Any,
    target: str | None = None,
    *,
    n_dags: int = 8,
    seed: int = 0,
    kinds: Mapping[str, str] | None = None,
    method: str = "pc",
    n_bootstrap: int = 20,
    alpha: float = 0.05,
    max_depth: int | None = 3,
    time_limit: float | None = None,
    target_sink: bool = True,
    required: Iterable[tuple[str, str]] = (),
    forbidden: Iterable[tuple[str, str]] = (),
    mechanisms: str = "fast",
    dtype: Any = None,
    progress: bool = True,
    return_info: bool = False,
) -> Any:
    """Fits an ensemble of SCMs to a table (pipeline in the module docstring).

    Args:
      df: a pandas DataFrame.
      target: the target column (categorical, >= 2 classes), or None.
      n_dags: number of graphs k in the ensemble.
      seed: the one seed; discovery, graph sampling and DoWhy are derived from it.
      kinds: column kind overrides ("numeric", "integer", "categorical").
      method, n_bootstrap, alpha, max_depth, time_limit, target_sink: as in
        `jaxscm.discover`.
      required: (cause, effect) name pairs every graph contains.
      forbidden: (cause, effect) name pairs no graph contains.
      mechanisms: as in `jaxscm.fit` ("fast", "linear", "hgb", "auto").
      dtype: float dtype of the distilled parameters (default float32).
      progress: show progress bars.
      return_info: also return a `FitInfo`.

    Returns:
      The `jaxscm.Ensemble` (columns in table order), or `(ensemble, info)` with
      `return_info=True`.

    Raises:
      SchemaError: a bad table (naming the column and the fix).
      ValueError: bad options, unknown names in `required`/`forbidden`, or required
        edges forming a cycle.

    Examples:
      >>> import numpy as np, pandas as pd, jax, jaxscm
      >>> rng = np.random.default_rng(0)
      >>> a = rng.normal(size=300)
      >>> y = np.where(a + rng.normal(size=300) > 0, "p", "n")
      >>> df = pd.DataFrame({"a": a, "y": y})
      >>> model = fit_scm(df, target="y", n_dags=2, n_bootstrap=2, progress=False)
      >>> jaxscm.sample(jax.random.key(0), model, 5).shape
      (2, 5, 2)
    """
    import jax
    import jax.numpy as jnp
    from tqdm.auto import tqdm

    from jaxscm._dags import sample_dags
    from jaxscm._discover import discover
    from jaxscm._distill import distill
    from jaxscm._ensemble import stack
    from jaxscm._fit import MECHANISMS, fit
    from jaxscm._table import prepare

    if n_dags < 1:
        raise ValueError(f"n_dags must be >= 1, got {n_dags}")
    if mechanisms not in MECHANISMS:
        raise ValueError(f"mechanisms must be one of {MECHANISMS}, got {mechanisms!r}")
    dtype = jnp.float32 if dtype is None else dtype
    timings: dict[str, float] = {}
    t_all = t = time.perf_counter()
    prep = prepare(df, target, kinds=kinds)
    names = [c.name for c in prep.columns]
    req, forb = (
        _edges(required, names, "required"),
        _edges(forbidden, names, "forbidden"),
    )
    timings["schema"] = time.perf_counter() - t

    t = time.perf_counter()
    probs = discover(
        prep.codes,
        columns=prep.columns,
        method=method,
        n_bootstrap=n_bootstrap,
        alpha=alpha,
        max_depth=max_depth,
        time_limit=time_limit,
        target_sink=target_sink,
        seed=seed,
        progress=progress,
    )
    timings["discover"] = time.perf_counter() - t

    t = time.perf_counter()
    key = jax.random.fold_in(jax.random.key(seed), 1)
    dags = np.asarray(
        sample_dags(key, probs, n_dags, required=req, forbidden=forb, nodes=names)
    )
    timings["sample_dags"] = time.perf_counter() - t

    cache: dict[Any, Any] = {}
    scms, chosen = [], []
    timings["fit"] = timings["distill"] = 0.0
    for dag in tqdm(dags, desc="fit + distill", disable=not progress):
        t = time.perf_counter()
        model = fit(
            prep.codes,
            dag,
            columns=prep.columns,
            mechanisms=mechanisms,
            random_state=seed,
            cache=cache,
        )
        timings["fit"] += time.perf_counter() - t
        t = time.perf_counter()
        scms.append(distill(model, columns=prep.columns, dtype=dtype))
        timings["distill"] += time.perf_counter() - t
        chosen.append(
            {str(v): str(model.graph.nodes[v]["jaxscm_mechanism"]) for v in names}
        )
    t = time.perf_counter()
    ensemble = stack(scms, columns=prep.columns)
    timings["stack"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_all
    if not return_info:
        return ensemble
    info = FitInfo(
        columns=prep.columns,
        edge_probs=probs,
        dags=dags,
        mechanisms=tuple(chosen),
        timings=timings,
        missing_rate=prep.missing_rate,
        dropped_rows=prep.dropped_rows,
        n_rows=int(prep.codes.shape[0]),
        options={
            "target": target,
            "n_dags": n_dags,
            "seed": seed,
            "method": method,
            "n_bootstrap": n_bootstrap,
            "alpha": alpha,
            "max_depth": max_depth,
            "time_limit": time_limit,
            "target_sink": target_sink,
            "mechanisms": mechanisms,
            "required": [list(e) for e in required],
            "forbidden": [list(e) for e in forbidden],
            "dtype": str(jnp.dtype(dtype)),
        },
    )
    return ensemble, info


def _edges(pairs: Iterable[tuple[str, str]], names: list[str], what: str) -> np.ndarray:
    adj = np.zeros((len(names), len(names)), bool)
    index = {n: i for i, n in enumerate(names)}
    for pair in pairs:
        if len(pair) != 2:
            raise ValueError(f"{what} edges are (cause, effect) pairs, got {pair!r}")
        for name in pair:
            if name not in index:
                raise ValueError(
                    f"{what} edge {pair!r}: no column {name!r}; columns are {names}"
                )
        adj[index[pair[0]], index[pair[1]]] = True
    return adj


def save_fit(
    path: str | os.PathLike[str], model: Any, info: FitInfo, *, overwrite: bool = False
) -> Path:
    """Writes a model directory (``model.npz`` + ``fit.json``) atomically.

    Args:
      path: the directory to create.
      model: the fitted ensemble (or SCM).
      info: its `FitInfo`.
      overwrite: replace an existing model directory (never a directory that is not
        one: a safety net against deleting user data).

    Returns:
      The directory.

    Raises:
      FileExistsError: `path` exists (non-empty) and `overwrite` is False, or it is
        not a model directory.
    """
    from jaxscm._io import save

    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        if not overwrite:
            raise FileExistsError(
                f"{path} already exists; choose another output or pass overwrite=True "
                f"(--overwrite)"
            )
        if not (path / "fit.json").is_file():
            raise FileExistsError(
                f"{path} exists and is not a model directory; not replacing it"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(
        tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    )
    old = None
    try:
        save(tmp / "model.npz", model)
        (tmp / "fit.json").write_text(json.dumps(info.to_json(), indent=1))
        # mkdtemp/mkstemp create owner-only entries; give the usual umask permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        for f in tmp.iterdir():
            os.chmod(f, 0o666 & ~umask)
        if path.exists() and any(path.iterdir()):
            old = path.with_name(f".{path.name}.{os.getpid()}.old")
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not path.exists():
            os.replace(old, path)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return path


def load_fit(path: str | os.PathLike[str]) -> tuple[Any, FitInfo]:
    """Reads a model directory written by `save_fit`.

    Returns:
      `(model, info)`.

    Raises:
      FileNotFoundError: no model directory at `path`.
      FormatError: a corrupted or mismatched model directory.
    """
    import jaxscm._features  # noqa: F401 - registers the feature classes `load` rebuilds
    from jaxscm._io import FormatError, load

    path = Path(path)
    if not (path / "model.npz").is_file() or not (path / "fit.json").is_file():
        raise FileNotFoundError(
            f"{path} is not a model directory (needs model.npz and fit.json); "
            f"create one "
            f"with `causalmixft fit-scm` or jaxscm.save_fit"
        )
    model = load(path / "model.npz")
    try:
        info = FitInfo.from_json(json.loads((path / "fit.json").read_text()))
    except (ValueError, KeyError, TypeError) as err:
        raise FormatError(f"{path / 'fit.json'}: {err}") from err
    if tuple(model.columns) != info.columns:
        raise FormatError(f"{path}: model.npz and fit.json describe different columns")
    return model, info
