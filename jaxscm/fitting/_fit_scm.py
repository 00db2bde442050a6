"""One call from a table to a sampleable SCM ensemble, and model directories.

`fit_scm` chains the front end: schema and missing values (`jaxscm.fitting._table`),
bootstrap PC/FCI edge probabilities (`discover`), k acyclic graphs (`sample_dags`),
a DoWhy fit per graph (`fit`, node fits shared between graphs with the same parents),
exact distillation (`distill`) and stacking (`stack`); the target's
parents, classifier and class share follow `LabelOptions` (`jaxscm.fitting._label`,
after discovery in `jaxscm.fitting._build`). The result is a
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
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxscm._schema import Column
from jaxscm.fitting._discover import DiscoveryOptions
from jaxscm.fitting._label import LabelOptions
from jaxscm.fitting._marginals import MarginalOptions

if TYPE_CHECKING:
    from jaxscm._ensemble import Ensemble

FIT_FORMAT = "jaxscm-fit"
FIT_VERSION = 2  # 2: fit.json carries the sha256 of its content


# eq=False: a record of arrays compares (and hashes) by identity; it rides on the
# fitted `Ensemble` as a static field, which needs a hash.
@dataclasses.dataclass(frozen=True, eq=False)
class FitInfo:
    """What `fit_scm` did, for reports and for reloading (`Ensemble.info`).

    Attributes:
      columns: the schema, table order.
      edge_probs: (d, d) P(i -> j) from discovery.
      dags: (k, d, d) the graphs of the members, `[b, i, j]` for i -> j: the
        sampled graphs with the target's parents widened by `LabelOptions`
        (the added edges are in `options["label_report"]["added_edges"]`).
      mechanisms: per graph, node -> predictor chosen ("empirical", "linear", "hgb",
        "auto"), with the marginal fixes used (e.g. "linear+qn+pointmass+clip").
      timings: seconds per stage: "schema", "discover", "sample_dags", "fit"
        (DoWhy), "distill", "stack", "total".
      missing_rate: per column, the fraction of missing entries that were imputed.
      dropped_rows: rows dropped for a missing target.
      n_rows: rows used for fitting.
      options: the options of the call (seed, discovery options, ...).
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
        """Inverse of `to_json`; raises ValueError on another format or version, or
        on a malformed record."""
        if not isinstance(d, Mapping):
            raise ValueError(f"a fit record is a JSON object, got {type(d).__name__}")
        if d.get("format") != FIT_FORMAT or d.get("version") != FIT_VERSION:
            raise ValueError(
                f"not a {FIT_FORMAT} v{FIT_VERSION} record (format "
                f"{d.get('format')!r}, "
                f"version {d.get('version')!r})"
            )
        fields = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - fields - {"format", "version", "sha256"})
        missing = sorted(fields - set(d))
        if missing or unknown:
            raise ValueError(f"the fit record lacks {missing} / has unknown {unknown}")
        for name in ("edge_probs", "dags"):
            if np.asarray(d[name]).dtype.kind not in "iuf":
                raise ValueError(f"{name} must hold numbers only")
        columns = tuple(Column.from_json(c) for c in d["columns"])
        n = len(columns)
        probs = np.asarray(d["edge_probs"], float)
        dags = np.asarray(d["dags"])
        if probs.shape != (n, n) or not ((probs >= 0) & (probs <= 1)).all():
            raise ValueError(f"edge_probs must be a ({n}, {n}) matrix of probabilities")
        if (
            dags.ndim != 3
            or dags.shape[1:] != (n, n)
            or not np.isin(dags, (0, 1)).all()
        ):
            raise ValueError(f"dags must be a (k, {n}, {n}) array of 0/1 entries")
        return cls(
            columns=columns,
            edge_probs=probs,
            dags=dags.astype(bool),
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
    columns: Sequence[Column] | None = None,
    n_dags: int = 8,
    seed: int = 0,
    kinds: Mapping[str, str] | None = None,
    discovery: DiscoveryOptions | None = None,
    required: Iterable[tuple[str, str]] = (),
    forbidden: Iterable[tuple[str, str]] = (),
    mechanisms: str = "fast",
    label: LabelOptions | None = None,
    dtype: Any = None,
    progress: bool = True,
    n_jobs: int | None = None,
    marginals: MarginalOptions | None = None,
) -> Ensemble:
    """Fits an ensemble of SCMs to a table (pipeline in the module docstring).

    The table is encoded once (`prepare`); discovery, every DoWhy fit (on one DoWhy
    frame), distillation and stacking take that one schema.

    Args:
      df: a pandas DataFrame, or an (n, d) array already encoded in `columns`'
        schema (category codes, NaN where missing; not encoded again).
      target: the target column (categorical, >= 2 classes), or None. Ignored when
        `columns` is given (the target is the column flagged `is_target`).
      columns: the schema to use (one `Column` per DataFrame column, by name, in the
        model's order) instead of inferring it; the SCM's codes are then exactly
        this schema's codes.
      n_dags: number of graphs k in the ensemble.
      seed: the one seed; discovery, graph sampling and DoWhy are derived from it.
      kinds: column kind overrides ("numeric", "integer", "categorical") for schema
        inference (not with `columns`).
      discovery: the `DiscoveryOptions` of `jaxscm.discover` (default:
        `DiscoveryOptions()`).
      required: (cause, effect) name pairs every graph contains.
      forbidden: (cause, effect) name pairs no graph contains.
      mechanisms: as in `jaxscm.fit` ("fast", "linear", "hgb", "auto").
      label: the target's mechanism, a `LabelOptions` (default: `LabelOptions()`:
        in every graph the target's parents are all its non-descendants, the other
        nodes keeping their discovered parents; the target's predictor is chosen
        like every node's, by `mechanisms`; each member's class share is calibrated
        to the training share by logit offsets). Chosen by validation
        TSTR on a development subset (`benchmarks/results/label_mechanism.md`).
        `LabelOptions.off()` gives the samples of the discovered graphs as before,
        bit for bit. Recorded in `FitInfo.options["label"]`, with
        `options["label_report"]`: the added (graph, parent, target) edges, the
        training class share, each member's calibrated share and offsets.
      dtype: float dtype of the distilled parameters (default float32).
      progress: show progress bars (on a terminal only).
      n_jobs: worker processes for the discovery resamples and the DoWhy node fits
        (None: the usable CPUs up to 4, 1 on <= 2 CPUs; 1: all in this process).
        The model is the same for any value.
      marginals: the marginal fixes of numeric non-root nodes (default
        `MarginalOptions()`: snap grid / few-valued columns and round integer ones,
        clip bounded columns, gate point masses, quantile-normal transforms of
        skewed columns; `jaxscm.fitting._marginals` gives the rules).
        `MarginalOptions.off()` fits plain additive-noise models (the model of
        earlier versions, bit for bit). Must be off with `mechanisms="auto"`.

    Returns:
      The `jaxscm.Ensemble` (columns in table order), its fit record in `.info`
      (a `FitInfo`).

    Raises:
      SchemaError: a bad table (naming the column and the fix).
      ValueError: bad options, unknown names in `required`/`forbidden`, required
        edges forming a cycle, or both `columns` and `kinds`.

    Examples:
      >>> import numpy as np, pandas as pd, jax, jaxscm
      >>> rng = np.random.default_rng(0)
      >>> a = rng.normal(size=300)
      >>> y = np.where(a + rng.normal(size=300) > 0, "p", "n")
      >>> df = pd.DataFrame({"a": a, "y": y})
      >>> opts = DiscoveryOptions(n_bootstrap=2)
      >>> model = fit_scm(df, target="y", n_dags=2, discovery=opts, progress=False)
      >>> jaxscm.sample(jax.random.key(0), model, 5).shape
      (2, 5, 2)
    """
    import jax.numpy as jnp

    from jaxscm.fitting._build import fit_on
    from jaxscm.fitting._discover import discover
    from jaxscm.fitting._fit import MECHANISMS, _check_target_classifier
    from jaxscm.fitting._table import prepare

    if n_dags < 1:
        raise ValueError(f"n_dags must be >= 1, got {n_dags}")
    if mechanisms not in MECHANISMS:
        raise ValueError(f"mechanisms must be one of {MECHANISMS}, got {mechanisms!r}")
    if columns is not None and kinds:
        raise ValueError("pass either a schema (columns=) or kind overrides (kinds=)")
    discovery = DiscoveryOptions() if discovery is None else discovery
    if not isinstance(discovery, DiscoveryOptions):
        raise TypeError(
            f"discovery must be a DiscoveryOptions, got {type(discovery).__name__}"
        )
    if marginals is None:
        marginals = MarginalOptions.off() if mechanisms == "auto" else MarginalOptions()
    if not isinstance(marginals, MarginalOptions):
        raise TypeError(
            f"marginals must be a MarginalOptions, got {type(marginals).__name__}"
        )
    label = LabelOptions() if label is None else label
    if not isinstance(label, LabelOptions):
        raise TypeError(f"label must be a LabelOptions, got {type(label).__name__}")
    _check_target_classifier(label.classifier, mechanisms)
    dtype = jnp.float32 if dtype is None else dtype
    timings: dict[str, float] = {}
    t_all = t = time.perf_counter()
    table = prepare(df, target, columns=columns, kinds=kinds)
    names = [c.name for c in table.columns]
    req, forb = (
        _edges(required, names, "required"),
        _edges(forbidden, names, "forbidden"),
    )
    timings["schema"] = time.perf_counter() - t

    t = time.perf_counter()
    probs = discover(
        table, options=discovery, seed=seed, progress=progress, n_jobs=n_jobs
    )
    timings["discover"] = time.perf_counter() - t

    return fit_on(
        table,
        probs,
        n_dags=n_dags,
        seed=seed,
        req=req,
        forb=forb,
        mechanisms=mechanisms,
        label=label,
        marginals=marginals,
        dtype=dtype,
        progress=progress,
        n_jobs=n_jobs,
        timings=timings,
        t_all=t_all,
        options={
            **discovery.to_json(),
            "required": [list(e) for e in required],
            "forbidden": [list(e) for e in forbidden],
        },
    )


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
    path: str | os.PathLike[str], model: Any, *, overwrite: bool = False
) -> Path:
    """Writes a model directory (``model.npz`` + ``fit.json``) atomically.

    Args:
      path: the directory to create.
      model: the fitted ensemble of `fit_scm` (its `.info` becomes ``fit.json``).
      overwrite: replace an existing model directory (never a directory that is not
        one: a safety net against deleting user data).

    Returns:
      The directory.

    Raises:
      TypeError: `model` carries no `FitInfo` (save a bare model with
        `jaxscm.save`), or is not a jaxscm model.
      FileExistsError: `path` exists (non-empty) and `overwrite` is False, or it is
        not a model directory.
    """
    from jaxscm._atomic import atomic_directory
    from jaxscm._io import save

    info = getattr(model, "info", None)
    if not isinstance(info, FitInfo):
        raise TypeError(
            f"save_fit needs the result of fit_scm (an Ensemble whose .info is a "
            f"FitInfo), got {type(model).__name__}; save a bare model with "
            f"jaxscm.save"
        )
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
    with atomic_directory(path, replace=True) as tmp:
        save(tmp / "model.npz", model)
        record = info.to_json()
        # Hashed as it will be read back (JSON turns tuples into lists, ...).
        record["sha256"] = _record_sha(json.loads(json.dumps(record)))
        (tmp / "fit.json").write_text(json.dumps(record, indent=1))
    return path


def load_fit(path: str | os.PathLike[str]) -> Ensemble:
    """Reads a model directory written by `save_fit`.

    Returns:
      The ensemble, its `FitInfo` in `.info`.

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
    from jaxscm._ensemble import Ensemble

    model = load(path / "model.npz")
    if not isinstance(model, Ensemble):
        raise FormatError(
            f"{path / 'model.npz'} holds a {type(model).__name__}, not an Ensemble"
        )
    try:
        record = json.loads((path / "fit.json").read_text("utf-8"))
        if isinstance(record, dict) and record.get("version") == FIT_VERSION:
            if record.get("sha256") != _record_sha(record):
                raise ValueError("its content fails its checksum (edited or corrupted)")
        info = FitInfo.from_json(record)
    except RecursionError as err:
        raise FormatError(f"{path / 'fit.json'}: nested too deeply") from err
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as err:
        raise FormatError(
            f"{path / 'fit.json'} is not a valid fit record ({err}); re-create the "
            f"model directory with `causalmixft fit-scm`"
        ) from err
    if tuple(model.columns) != info.columns:
        raise FormatError(f"{path}: model.npz and fit.json describe different columns")
    if info.dags.shape[0] != np.shape(model.group)[0]:
        raise FormatError(
            f"{path}: fit.json lists {info.dags.shape[0]} graphs, model.npz holds "
            f"{np.shape(model.group)[0]} members"
        )
    return model.with_info(info)


def _record_sha(record: Mapping[str, Any]) -> str:
    import hashlib

    body = {k: v for k, v in record.items() if k != "sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
