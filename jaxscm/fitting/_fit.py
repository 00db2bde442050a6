"""Fitting DoWhy gcm mechanisms on one DAG.

`fit` builds a `gcm.StructuralCausalModel` for a given DAG and fits every node:

* roots: `EmpiricalDistribution` (resampling the column, labels for categorical);
* numeric nodes: `AdditiveNoiseModel`, integer nodes: `DiscreteAdditiveNoiseModel`,
  each with empirical residual noise;
* categorical nodes and the target: `ClassifierFCM`.

`mechanisms="fast"` (default) picks each node's predictor by one cheap criterion: on
a fixed 75/25 split of the rows, a linear model (LinearRegression; for classes
StandardScaler + LogisticRegression) against HistGradientBoosting (15 leaves, stopped
after 50 iterations for the comparison). Gradient boosting is taken only when it cuts
the held-out quarter's loss (mean squared error; log-loss for classes) by more than
10% - smaller gains are within the noise of a quarter of the rows - otherwise the
linear model, which is cheaper to fit and sample and extrapolates smoothly. The
mechanism then fitted on all rows is gradient boosting with 100 iterations. The 50
(half the boosting work of comparing at 100) were chosen on the validation rows of a
development subset: `benchmarks/results/mechanism_rule.md`.
`"linear"` always takes the linear model, `"hgb"` always gradient boosting, and
`"auto"` hands the choice to DoWhy's `gcm.auto.assign_causal_mechanisms` (quality
GOOD; much slower: tens of seconds at 30 nodes).

DoWhy draws from NumPy's global RNG (CatBoost encoders, sampling). `seeded_numpy`
seeds it inside a context and restores the caller's state afterwards; `fit` seeds
every node from (seed, node, parents), so a node with the same parents gets
the same fit in every DAG, and `fit_scm` reuses it through a cache.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from jaxscm._schema import Column
from jaxscm.fitting._marginals import MarginalOptions

MECHANISMS = ("fast", "linear", "hgb", "auto")
TARGET_CLASSIFIERS = ("same", "logistic_cv")
_HGB_GAIN = 0.9  # gradient boosting must reach below 90% of the linear model's loss
_HGB_ITERS = 100  # the fitted gradient-boosting mechanisms
_COMPARE_ITERS = 50  # the comparison's gradient boosting (benchmarks.mechanism_rule)


@contextlib.contextmanager
def seeded_numpy(seed: int | np.random.Generator) -> Iterator[None]:
    """Seeds NumPy's global RNG inside the block and restores its prior state after.

    Args:
      seed: an int seed, or a Generator from which one seed is drawn.

    Examples:
      >>> import numpy as np
      >>> before = np.random.get_state()[1].copy()
      >>> with seeded_numpy(0):
      ...     _ = np.random.rand()
      >>> bool((np.random.get_state()[1] == before).all())
      True
    """
    seed = _seed(seed)
    # The legacy global RNG is the point here: DoWhy draws from it.
    state = np.random.get_state()  # noqa: NPY002
    np.random.seed(seed)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def _seed(seed: int | np.random.Generator) -> int:
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**32 - 1))
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return int(seed) % (2**32)
    raise TypeError(
        f"seed must be an int or np.random.Generator, got {type(seed).__name__}"
    )


def fit(
    x: Any,
    dag: Any,
    *,
    columns: Sequence[Column] | None = None,
    target: str | None = None,
    mechanisms: str = "fast",
    seed: int | np.random.Generator = 0,
    cache: dict[Any, Any] | None = None,
    marginals: MarginalOptions | None = None,
    target_classifier: str = "same",
) -> Any:
    """Fits a DoWhy `gcm.StructuralCausalModel` on one DAG (rules in module doc).

    Args:
      x: a DataFrame (schema inferred unless `columns` is given; missing values
        imputed, see `jaxscm.fitting._table`), a prepared table
        (`jaxscm.fitting.prepare`: its DoWhy frame is built once and reused by
        every call on it), or an (n, d) array of values / category codes.
      dag: (d, d) adjacency (`[i, j]` true for i -> j, columns in table order) or a
        networkx DiGraph over the column names.
      columns: the schema (needed with an array holding categorical codes).
      target: the target column name for schema inference.
      mechanisms: "fast", "linear", "hgb" or "auto".
      seed: seed for the model choice split and DoWhy's global RNG.
      cache: a dict shared across calls on the same data and options; a node fitted
        with the same parents before is reused (not refitted).
      marginals: the marginal fixes of numeric nodes (`MarginalOptions`: snapping,
        clipping, point masses, quantile-normal transforms); None (default) fits
        plain additive-noise models. Not with `mechanisms="auto"`.
      target_classifier: the target's predictor: "same" (by `mechanisms`, like
        every other node) or "logistic_cv" (an L2 logistic regression whose C is
        chosen by internal cross-validation, see `jaxscm.fitting.LabelOptions`).
        Not with `mechanisms="auto"` unless "same".

    Returns:
      The fitted model; each node's graph attribute "jaxscm_mechanism" says what was
      chosen ("empirical", "linear", "hgb" or "auto"), followed by the marginal
      fixes used ("+qn", "+pointmass", "+snap", "+grid", "+round", "+clip").

    Raises:
      ValueError: an unknown `mechanisms`, a graph that is not a DAG over the columns.

    Examples:
      >>> import numpy as np
      >>> rng = np.random.default_rng(0)
      >>> a = rng.normal(size=200)
      >>> m = fit(np.c_[a, 2 * a + rng.normal(size=200)], np.array([[0, 1], [0, 0]]))
      >>> print(m.graph.nodes["x1"]["jaxscm_mechanism"])
      linear
    """
    import networkx as nx
    from dowhy import gcm
    from dowhy.gcm.causal_models import PARENTS_DURING_FIT
    from dowhy.graph import get_ordered_predecessors

    from jaxscm.fitting._table import as_prepared

    if mechanisms not in MECHANISMS:
        raise ValueError(f"mechanisms must be one of {MECHANISMS}, got {mechanisms!r}")
    marginals = _marginal_options(marginals, mechanisms)
    _check_target_classifier(target_classifier, mechanisms)
    table = as_prepared(x, columns, target)
    columns = table.columns
    names = [c.name for c in columns]
    graph = _graph(dag, names)
    frame = table.frame
    model = gcm.StructuralCausalModel(graph)
    base = _seed(seed)
    index = {name: j for j, name in enumerate(names)}
    if mechanisms == "auto":
        with seeded_numpy(base):
            gcm.auto.assign_causal_mechanisms(
                model, frame, quality=gcm.auto.AssignmentQuality.GOOD
            )
    for node in nx.topological_sort(graph):
        parents = tuple(get_ordered_predecessors(graph, node))
        node_seed = _node_seed(base, index, node, parents)
        tc = target_classifier if columns[index[node]].is_target else "same"
        key = (node, parents, mechanisms, base, marginals, tc)
        if mechanisms != "auto" and cache is not None and key in cache:
            mech, choice = cache[key]
        elif mechanisms == "auto":
            with seeded_numpy(node_seed):
                mech, choice = model.causal_mechanism(node), "auto"
                gcm.fitting_sampling.fit_causal_model_of_target(model, node, frame)
        else:
            mech, choice = _fit_node(
                table, node, parents, mechanisms, base, marginals, tc
            )
            if cache is not None:
                cache[key] = (mech, choice)
        model.set_causal_mechanism(node, mech)
        graph.nodes[node][PARENTS_DURING_FIT] = list(parents)
        graph.nodes[node]["jaxscm_mechanism"] = choice
    return model


def _node_seed(
    base: int, index: dict[str, int], node: str, parents: tuple[str, ...]
) -> int:
    seq = np.random.SeedSequence([base, index[node], *(index[p] for p in parents)])
    return int(seq.generate_state(1)[0])


def _marginal_options(marginals: Any, mechanisms: str) -> MarginalOptions | None:
    if marginals is None:
        return None
    if not isinstance(marginals, MarginalOptions):
        raise TypeError(
            f"marginals must be a MarginalOptions or None, got "
            f"{type(marginals).__name__}"
        )
    if mechanisms == "auto" and marginals.any:
        raise ValueError(
            'mechanisms="auto" leaves the choice to DoWhy; pass '
            "marginals=MarginalOptions.off() (--no-snap --no-clip --no-point-mass "
            "--no-transform) with it"
        )
    # All switches off is the plain model: one cache key for both spellings.
    return marginals if marginals.any else None


def _check_target_classifier(target_classifier: str, mechanisms: str) -> None:
    if target_classifier not in TARGET_CLASSIFIERS:
        raise ValueError(
            f"target_classifier must be one of {TARGET_CLASSIFIERS}, got "
            f"{target_classifier!r}"
        )
    if mechanisms == "auto" and target_classifier != "same":
        raise ValueError(
            'mechanisms="auto" lets DoWhy choose every mechanism; use '
            'target_classifier="same" (LabelOptions(classifier="same")) with it'
        )


def _fit_node(
    table: Any,
    node: str,
    parents: tuple[str, ...],
    mechanisms: str,
    base: int,
    marginals: MarginalOptions | None = None,
    target_classifier: str = "same",
) -> tuple[Any, str]:
    """One node's fitted DoWhy mechanism and choice; depends on nothing else.

    The node is fitted in a graph of its parents alone: DoWhy fits a node from its
    (sorted) parents' columns only, so this is the fit it gets in any DAG, and it
    can run in a worker process.
    """
    import networkx as nx
    from dowhy import gcm

    columns, codes = table.columns, table.codes
    index = {c.name: j for j, c in enumerate(columns)}
    node_seed = _node_seed(base, index, node, parents)
    graph = nx.DiGraph()
    graph.add_nodes_from([*parents, node])
    graph.add_edges_from((p, node) for p in parents)
    model = gcm.StructuralCausalModel(graph)
    with seeded_numpy(node_seed):
        mech, choice = _choose(
            columns[index[node]],
            codes,
            [index[p] for p in parents],
            columns,
            mechanisms,
            node_seed,
            marginals,
            target_classifier,
        )
        model.set_causal_mechanism(node, mech)
        gcm.fitting_sampling.fit_causal_model_of_target(model, node, table.frame)
    return mech, choice


def fit_nodes(
    table: Any,
    dags: Sequence[Any],
    *,
    mechanisms: str,
    seed: int | np.random.Generator,
    cache: dict[Any, Any],
    n_jobs: int | None = None,
    marginals: MarginalOptions | None = None,
    target_classifier: str = "same",
) -> dict[Any, Any]:
    """Fits every distinct (node, parents) of `dags` once, into `fit`'s cache.

    The fits run on `n_jobs` worker processes (`jaxscm.fitting._workers`); `fit`
    on each DAG with the filled cache then gives the same models as without it.
    Does nothing for `mechanisms="auto"` (DoWhy assigns those per graph).

    Args:
      table: the prepared table (`jaxscm.fitting.prepare`).
      dags: (d, d) adjacency matrices in table column order.
      mechanisms: as in `fit`.
      seed: as in `fit` (an int: a Generator would be consumed differently).
      cache: the dict later passed to `fit`; filled in place.
      n_jobs: worker processes (None: the usable CPUs up to 4, 1 on <= 2 CPUs;
        1: this process).
      marginals: as in `fit` (part of the cache key).
      target_classifier: as in `fit`.

    Returns:
      `cache`.
    """
    _check_target_classifier(target_classifier, mechanisms)
    if mechanisms == "auto":
        return cache
    marginals = _marginal_options(marginals, mechanisms)
    names = [c.name for c in table.columns]
    base = _seed(seed)
    todo: dict[Any, tuple[str, tuple[str, ...], str]] = {}
    for dag in dags:
        graph = _graph(dag, names)
        for col in table.columns:
            node = col.name
            parents = tuple(sorted(graph.predecessors(node)))
            tc = target_classifier if col.is_target else "same"
            key = (node, parents, mechanisms, base, marginals, tc)
            if key not in cache and key not in todo:
                todo[key] = (node, parents, tc)
    calls = [
        (_fit_node, (table, node, parents, mechanisms, base, marginals, tc))
        for node, parents, tc in todo.values()
    ]
    from jaxscm.fitting._workers import n_workers, parallel

    for key, result in zip(todo, parallel(n_workers(n_jobs), calls), strict=True):
        cache[key] = result
    return cache


def _graph(dag: Any, names: list[str]) -> Any:
    import networkx as nx

    if isinstance(dag, nx.DiGraph):
        unknown = sorted(set(map(str, dag.nodes)) - set(names))
        if unknown:
            raise ValueError(
                f"the graph has nodes {unknown} that are not columns {names}"
            )
        graph = nx.DiGraph()
        graph.add_nodes_from(names)
        graph.add_edges_from((str(a), str(b)) for a, b in dag.edges)
    else:
        adj = np.asarray(dag).astype(bool)
        if adj.shape != (len(names), len(names)):
            raise ValueError(
                f"dag must be a ({len(names)}, {len(names)}) adjacency matrix, got "
                f"{adj.shape}"
            )
        graph = nx.DiGraph()
        graph.add_nodes_from(names)
        graph.add_edges_from((names[i], names[j]) for i, j in np.argwhere(adj))
    if not nx.is_directed_acyclic_graph(graph):
        cycle = " -> ".join(str(a) for a, _ in nx.find_cycle(graph))
        raise ValueError(f"the graph has a directed cycle ({cycle}); pass a DAG")
    return graph


def _choose(
    col: Column,
    codes: np.ndarray,
    parents: list[int],
    columns: Sequence[Column],
    mode: str,
    seed: int,
    marginals: MarginalOptions | None = None,
    target_classifier: str = "same",
) -> tuple[Any, str]:
    """The (unfitted) DoWhy mechanism for one node, and the predictor chosen
    (with the marginal fixes of `jaxscm.fitting._marginals` for numeric nodes)."""
    from dowhy import gcm

    if not parents:
        return gcm.EmpiricalDistribution(), "empirical"
    if col.is_target and target_classifier == "logistic_cv":
        from jaxscm.fitting._label import logistic_cv

        X = _features(codes, parents, columns)
        estimator, c = logistic_cv(X, codes[:, columns.index(col)], seed)
        model = gcm.ml.SklearnClassificationModel(estimator)
        return gcm.ClassifierFCM(model), f"logistic_cv(C={c:g})"
    choice = mode
    if mode == "fast":
        choice = _compare(col, codes, parents, columns, seed)
    if col.kind == "categorical":
        model = gcm.ml.SklearnClassificationModel(_classifier(choice, seed))
        return gcm.ClassifierFCM(model), choice
    if marginals is not None:
        from jaxscm.fitting._marginal_fcms import marginal_mechanism
        from jaxscm.fitting._marginals import plan_column

        y = codes[:, columns.index(col)]
        plan = plan_column(y, col.kind, marginals)
        regressor, classifier = _regressor(choice, seed), _classifier(choice, seed)
        mech = marginal_mechanism(plan, col.kind, regressor, classifier, y)
        return mech, choice + plan.label()
    model = gcm.ml.SklearnRegressionModel(_regressor(choice, seed))
    if col.kind == "integer":
        return gcm.DiscreteAdditiveNoiseModel(model), choice
    return gcm.AdditiveNoiseModel(model), choice


def _hgb_options(seed: int, max_iter: int = _HGB_ITERS) -> dict[str, Any]:
    # The "hgb" choice uses the same settings for regressors and classifiers.
    return dict(
        max_iter=max_iter,
        max_leaf_nodes=15,
        early_stopping=False,
        random_state=seed % 2**31,
    )


def _regressor(choice: str, seed: int, max_iter: int = _HGB_ITERS) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import LinearRegression

    if choice == "hgb":
        return HistGradientBoostingRegressor(**_hgb_options(seed, max_iter))
    return LinearRegression()


def _classifier(choice: str, seed: int, max_iter: int = _HGB_ITERS) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if choice == "hgb":
        return HistGradientBoostingClassifier(**_hgb_options(seed, max_iter))
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


def _features(
    codes: np.ndarray, parents: list[int], columns: Sequence[Column]
) -> np.ndarray:
    """Parent matrix for the model choice, categorical parents one-hot encoded."""
    blocks = []
    for j in parents:
        v = codes[:, j]
        if columns[j].kind == "categorical":
            blocks.append(np.eye(columns[j].n_categories)[v.astype(np.int64)])
        else:
            blocks.append(v[:, None])
    return np.concatenate(blocks, axis=1)


def _compare(
    col: Column,
    codes: np.ndarray,
    parents: list[int],
    columns: Sequence[Column],
    seed: int,
) -> str:
    """'hgb' if gradient boosting beats the linear model on a held-out quarter.

    The comparison's gradient boosting stops after `_COMPARE_ITERS` iterations (the
    first iterations of the fitted mechanism's `_HGB_ITERS`: boosting has no
    randomness here)."""
    split = _comparison_split(col, codes, parents, columns, seed)
    if split is None:
        return "linear"
    X, y, train, test = split
    if col.kind == "categorical":
        losses = [
            _logloss(_classifier(c, seed, _COMPARE_ITERS), X, y, train, test)
            for c in ("linear", "hgb")
        ]
    else:
        losses = [
            _mse(_regressor(c, seed, _COMPARE_ITERS), X, y, train, test)
            for c in ("linear", "hgb")
        ]
    return "hgb" if losses[1] < _HGB_GAIN * losses[0] else "linear"


def _comparison_split(
    col: Column,
    codes: np.ndarray,
    parents: list[int],
    columns: Sequence[Column],
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """(X, y, train rows, held-out rows) of the comparison, or None where it takes
    the linear model without comparing (under 40 rows; one class in training)."""
    n = codes.shape[0]
    if n < 40:
        return None
    X = _features(codes, parents, columns)
    y = codes[:, columns.index(col)]
    perm = np.random.default_rng(seed).permutation(n)
    test, train = perm[: n // 4], perm[n // 4 :]
    if col.kind == "categorical":
        y = y.astype(np.int64)
        if len(np.unique(y[train])) < 2:
            return None
    return X, y, train, test


def _mse(
    model: Any, X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray
) -> float:
    model.fit(X[train], y[train])
    return float(((y[test] - model.predict(X[test])) ** 2).mean())


def _logloss(
    model: Any, X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray
) -> float:
    model.fit(X[train], y[train])
    return _logloss_of(model, model.predict_proba(X[test]), y[test])


def _logloss_of(model: Any, proba: np.ndarray, y: np.ndarray) -> float:
    """Mean log-loss of `proba` (columns: `model.classes_`) for the labels `y`."""
    # Classes the training rows lacked get probability 0 -> clipped, a large loss.
    col = {c: i for i, c in enumerate(model.classes_)}
    p = np.array([proba[r, col[c]] if c in col else 0.0 for r, c in enumerate(y)])
    return float(-np.log(np.clip(p, 1e-12, 1.0)).mean())
