"""Distillation: a fitted DoWhy gcm model -> a pure-JAX `SCM`, exactly.

This is the one place where DoWhy and sklearn objects meet the core. Three
`functools.singledispatch` registries convert, in turn, a node's mechanism (DoWhy's
`ClassifierFCM`, `AdditiveNoiseModel`, ...), its noise model (`EmpiricalDistribution`,
`ScipyDistribution`) and its prediction model (DoWhy's sklearn wrappers, and the
sklearn estimators inside them, in `jaxscm.distillation._sklearn`). Every conversion
copies parameters; nothing is refitted. A type without a conversion raises
`NotImplementedError` naming the node and the type; the only lossy path is the
explicit `surrogate=` opt-in (`jaxscm.distillation._surrogate`).

Values: DoWhy works on category labels, the SCM on integer codes. A categorical
column's code `i` is the label `Column.categories[i]`; classifier probabilities are
permuted from sklearn's sorted `classes_` into that order, and categorical parents go
through a lookup table (`Encode`) that reproduces DoWhy's one-hot or CatBoost
encoding of the label. With categories listed in sorted label order (what inferring
the schema here does), the same uniform noise picks the same class on both sides;
another order gives the same distribution but not the same draw per noise value.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxscm._features import Pipeline, Select
from jaxscm._mechanisms import Additive, Classifier, Root
from jaxscm._noise import PARAMETRIC_FAMILIES, Empirical, Parametric
from jaxscm._pytree import to_device
from jaxscm._schema import Column, label
from jaxscm._scm import SCM
from jaxscm._validate import check_parameters
from jaxscm.distillation._columns import (
    classes_of,
    encoders,
    mechanism_of,
    resolve_columns,
)


@dataclasses.dataclass
class _Node:
    """What a conversion needs to know about the node it converts."""

    name: str
    node: Any  # the node key in the DoWhy graph (may be a non-string)
    column: Column
    parents: tuple[Any, ...]  # DoWhy parent keys, in get_ordered_predecessors order
    parent_columns: tuple[Column, ...]
    dtype: Any
    run: _Run

    @property
    def where(self) -> str:
        return f"node {self.name!r}"

    def array(self, a: Any) -> jax.Array:
        # cast on the host: jnp.asarray(..., dtype) compiles a conversion per shape
        return to_device(np.asarray(a, dtype=np.float64).astype(jnp.dtype(self.dtype)))


@dataclasses.dataclass
class _Run:
    """State shared by the nodes of one `distill` call."""

    causal_model: Any
    columns: dict[str, Column]
    surrogate: Any  # SurrogateOptions | None
    _samples: Any = None

    def samples(self) -> Any:
        """DoWhy's own samples of the model (for surrogate training), drawn once."""
        if self._samples is None:
            from jaxscm.distillation._surrogate import draw_gcm_samples

            self._samples = draw_gcm_samples(self.causal_model, self.surrogate)
        return self._samples


def distill(
    causal_model: Any,
    *,
    columns: Sequence[Column] | None = None,
    dtype: Any = jnp.float32,
    surrogate: Any = False,
) -> SCM:
    """Converts a fitted DoWhy gcm causal model into an `SCM` PyTree.

    Supported, exactly (parameters copied): roots and noise from
    `EmpiricalDistribution` and `ScipyDistribution` (norm, uniform, laplace, logistic,
    cauchy, gumbel_r, expon, halfnorm, t, gamma, lognorm, beta); `AdditiveNoiseModel`,
    `PostNonlinearModel` (identity, exp, log links), `DiscreteAdditiveNoiseModel` and
    `ClassifierFCM`, whose prediction models may be DoWhy's sklearn wrappers (with
    their one-hot / CatBoost encoders of categorical parents) or
    `LinearRegressionWithFixedParameter`, around: sklearn linear regressors
    (LinearRegression, Ridge(CV), Lasso(CV), ElasticNet(CV), LassoLarsIC, ...),
    LogisticRegression, HistGradientBoosting regressor/classifier (numeric splits),
    DecisionTree / RandomForest / ExtraTrees regressor/classifier, MLPRegressor /
    MLPClassifier, and Pipelines of StandardScaler / MinMaxScaler / PolynomialFeatures
    with any of these.

    Args:
      causal_model: a fitted `gcm.StructuralCausalModel` (or `ProbabilisticCausalModel`
        / `InvertibleStructuralCausalModel`).
      columns: the columns, one per graph node (by name, any order). If None, they are
        inferred from the mechanisms: `ClassifierFCM` nodes are categorical with the
        classifier's classes as categories, roots holding strings or booleans are
        categorical with their sorted labels, `DiscreteAdditiveNoiseModel` nodes are
        integer, the rest numeric.
      dtype: float dtype of the parameters (`jnp.float64` needs `jax_enable_x64`).
      surrogate: False (default) refuses unsupported prediction models and noise
        distributions. True, a float (the minimum fidelity) or a `SurrogateOptions`
        replaces each unsupported prediction model by an MLP trained on the model's
        own input/output pairs, and each unsupported distribution by an `Empirical`
        of its draws; every surrogate emits a `SurrogateWarning` stating its fidelity
        (held-out R^2 for regression, accuracy for classification) and a fidelity
        below the minimum raises `SurrogateFidelityError`.

    Returns:
      The SCM, nodes in a topological order of the graph (ties broken by schema
      order, then name), each node's parents in DoWhy's `get_ordered_predecessors`
      order.

    Raises:
      NotImplementedError: a mechanism, noise or prediction model without an exact
        conversion (naming the node and the type), unless `surrogate` is set.
      ValueError: an unfitted model, columns that do not match the graph, or
        category labels that the columns do not list.
      ParameterError: a fitted parameter is not finite, or a noise scale or shape
        parameter is out of range (a ValueError naming the node and the field).
      SurrogateFidelityError: a requested surrogate is below the minimum fidelity.

    Examples:
      >>> import networkx as nx, numpy as np, pandas as pd
      >>> from dowhy import gcm
      >>> m = gcm.StructuralCausalModel(nx.DiGraph([("x", "y")]))
      >>> m.set_causal_mechanism("x", gcm.EmpiricalDistribution())
      >>> anm = gcm.AdditiveNoiseModel(gcm.ml.create_linear_regressor())
      >>> m.set_causal_mechanism("y", anm)
      >>> x = np.arange(20.0)
      >>> gcm.config.disable_progress_bars()
      >>> gcm.fit(m, pd.DataFrame({"x": x, "y": 2 * x + 1}))
      >>> print(distill(m).nodes)
      ('x', 'y')
    """
    import networkx as nx
    from dowhy.graph import get_ordered_predecessors

    from jaxscm.distillation._surrogate import surrogate_options

    _ensure_registered()
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"dtype must be a float dtype, got {dtype}")
    if dtype == jnp.float64 and not jax.config.jax_enable_x64:
        raise ValueError("dtype float64 needs jax_enable_x64 (JAX_ENABLE_X64=1)")
    surrogate = surrogate_options(surrogate)

    graph = getattr(causal_model, "graph", None)
    if graph is None or not isinstance(graph, nx.DiGraph):
        raise TypeError(
            f"distill expects a DoWhy gcm causal model with a networkx graph, got "
            f"{type(causal_model).__name__}"
        )
    if not nx.is_directed_acyclic_graph(graph):
        raise ValueError("the causal model's graph has a directed cycle")
    names = {node: str(node) for node in graph.nodes}
    if len(set(names.values())) != len(names):
        raise ValueError("graph node names collide when converted to strings")

    schema = columns
    columns = resolve_columns(causal_model, graph, names, schema)
    position = {c.name: i for i, c in enumerate(schema or ())}
    order = list(
        nx.lexicographical_topological_sort(
            graph, key=lambda v: (position.get(names[v], len(position)), names[v])
        )
    )
    index = {v: i for i, v in enumerate(order)}
    run = _Run(causal_model=causal_model, columns=columns, surrogate=surrogate)

    mechanisms, parent_idx = [], []
    for v in order:
        parents = tuple(get_ordered_predecessors(graph, v))
        fitted = graph.nodes[v].get("parents_during_fit")
        if fitted is not None and tuple(fitted) != parents:
            # The mechanism's inputs are the parents it was fitted with, in this order.
            raise ValueError(
                f"node {names[v]!r} was fitted with parents {[str(p) for p in fitted]} "
                f"but the graph now gives {[str(p) for p in parents]}; call gcm.fit "
                f"again"
            )
        ctx = _Node(
            name=names[v],
            node=v,
            column=columns[names[v]],
            parents=parents,
            parent_columns=tuple(columns[names[p]] for p in parents),
            dtype=dtype,
            run=run,
        )
        mech = mechanism_of(causal_model, v, ctx.where)
        mechanisms.append(_mechanism(mech, ctx))
        parent_idx.append(tuple(index[p] for p in parents))
    scm = SCM(
        mechanisms=tuple(mechanisms),
        columns=tuple(columns[names[v]] for v in order),
        parents=tuple(parent_idx),
    )
    # A diverged DoWhy fit (NaN coefficients, a negative scale) must fail here,
    # naming the node, not as NaN rows at sampling time.
    check_parameters(scm)
    return scm


# --- node mechanisms ----------------------------------------------------------------


@functools.singledispatch
def _mechanism(mech: Any, ctx: _Node) -> Any:
    raise NotImplementedError(
        f"{ctx.where}: no exact conversion for the mechanism type "
        f"{type(mech).__module__}.{type(mech).__qualname__}; supported are "
        f"EmpiricalDistribution, ScipyDistribution, AdditiveNoiseModel, "
        f"PostNonlinearModel, DiscreteAdditiveNoiseModel and ClassifierFCM"
    )


def _register_mechanisms() -> None:
    from dowhy.gcm import (
        ClassifierFCM,
        DiscreteAdditiveNoiseModel,
        PostNonlinearModel,
    )
    from dowhy.gcm.causal_mechanisms import StochasticModel
    from dowhy.gcm.ml.regression import (
        InvertibleExponentialFunction,
        InvertibleIdentityFunction,
        InvertibleLogarithmicFunction,
    )

    links = {
        InvertibleIdentityFunction: "identity",
        InvertibleExponentialFunction: "exp",
        InvertibleLogarithmicFunction: "log",
    }

    def root(mech: Any, ctx: _Node) -> Root:
        if ctx.parents:
            raise ValueError(
                f"{ctx.where} has parents {[str(p) for p in ctx.parents]} but a "
                f"{type(mech).__name__} mechanism, which ignores them"
            )
        return Root(noise=_noise(mech, ctx, root=True))

    # Any root distribution: EmpiricalDistribution and ScipyDistribution convert
    # exactly, others are refused by `_noise` (or resampled on the surrogate opt-in).
    _mechanism.register(StochasticModel, root)

    @_mechanism.register(PostNonlinearModel)
    def _(mech: PostNonlinearModel, ctx: _Node) -> Any:
        from jaxscm.distillation._marginals import register_transform

        _numeric_node(mech, ctx)
        f = _predictor_or_surrogate(mech.prediction_model, ctx, classifier=False)
        warped = register_transform(mech, ctx, f, _noise(mech.noise_model, ctx))
        if warped is not None:
            return warped
        link = links.get(type(mech.invertible_function))
        if link is None:
            raise NotImplementedError(
                f"{ctx.where}: no exact conversion for the invertible function "
                f"{type(mech.invertible_function).__qualname__}; supported are "
                f"{sorted(c.__name__ for c in links)}"
            )
        return Additive(f=f, noise=_noise(mech.noise_model, ctx), link=link)

    @_mechanism.register(DiscreteAdditiveNoiseModel)
    def _(mech: DiscreteAdditiveNoiseModel, ctx: _Node) -> Additive:
        _numeric_node(mech, ctx)
        return Additive(
            f=_predictor_or_surrogate(mech.prediction_model, ctx, classifier=False),
            noise=_noise(mech.noise_model, ctx),
            discrete=True,
        )

    @_mechanism.register(ClassifierFCM)
    def _(mech: ClassifierFCM, ctx: _Node) -> Classifier:
        if ctx.column.kind != "categorical":
            raise ValueError(
                f"{ctx.where}: a ClassifierFCM needs a categorical column, the schema "
                f"says {ctx.column.kind!r}"
            )
        model = mech.classifier_model
        classes = [label(c) for c in classes_of(model, ctx.where)]
        unknown = [c for c in classes if c not in ctx.column.categories]
        if unknown:
            raise ValueError(
                f"{ctx.where}: the classifier predicts classes {unknown} that are not "
                f"among the column's categories {list(ctx.column.categories)}"
            )
        f = _predictor_or_surrogate(model, ctx, classifier=True)
        perm = tuple(
            classes.index(c) if c in classes else -1 for c in ctx.column.categories
        )
        if perm != tuple(range(len(classes))):
            f = _then(f, Select(index=perm))
        return Classifier(f=f)


def _numeric_node(mech: Any, ctx: _Node) -> None:
    if ctx.column.kind == "categorical":
        raise ValueError(
            f"{ctx.where}: a {type(mech).__name__} yields numbers but the schema says "
            f"the column is categorical; use a ClassifierFCM"
        )


def _then(f: Any, step: Any) -> Pipeline:
    steps = f.steps if isinstance(f, Pipeline) else (f,)
    return Pipeline(steps=(*steps, step))


# --- noise models -------------------------------------------------------------------


@functools.singledispatch
def _noise(noise: Any, ctx: _Node, root: bool = False) -> Any:
    what = f"{type(noise).__module__}.{type(noise).__qualname__}"
    if ctx.run.surrogate is not None and hasattr(noise, "draw_samples"):
        from jaxscm.distillation._surrogate import empirical_surrogate

        return empirical_surrogate(noise, ctx, root=root, what=what)
    raise NotImplementedError(
        f"{ctx.where}: no exact conversion for the {'root' if root else 'noise'} "
        f"distribution {what}; supported are EmpiricalDistribution and "
        f"ScipyDistribution. Pass distill(..., surrogate=True) to replace it by an "
        f"Empirical of its own draws (approximate)"
    )


def _register_noise() -> None:
    from dowhy.gcm import EmpiricalDistribution, ScipyDistribution

    @_noise.register(EmpiricalDistribution)
    def _(noise: EmpiricalDistribution, ctx: _Node, root: bool = False) -> Empirical:
        if noise.data is None:
            raise ValueError(
                f"{ctx.where}: EmpiricalDistribution is not fitted; call gcm.fit"
            )
        data = np.asarray(noise.data)
        if data.ndim == 2 and data.shape[1] != 1:
            raise ValueError(
                f"{ctx.where}: EmpiricalDistribution holds {data.shape[1]} columns, "
                f"expected 1"
            )
        if root:
            values = ctx.column.code_of(data)
        else:
            values = np.asarray(data, dtype=np.float64).ravel()
        return Empirical(values=ctx.array(values))

    @_noise.register(ScipyDistribution)
    def _(noise: ScipyDistribution, ctx: _Node, root: bool = False) -> Parametric:
        dist = noise.scipy_distribution
        if dist is None or not noise.parameters:
            raise ValueError(
                f"{ctx.where}: ScipyDistribution is not fitted; call gcm.fit"
            )
        if root and ctx.column.kind == "categorical":
            raise ValueError(
                f"{ctx.where}: a categorical root cannot be a ScipyDistribution"
            )
        family = getattr(dist, "name", None)
        if family not in PARAMETRIC_FAMILIES and ctx.run.surrogate is not None:
            from jaxscm.distillation._surrogate import empirical_surrogate

            return empirical_surrogate(noise, ctx, root=root, what=f"scipy {family}")
        if family not in PARAMETRIC_FAMILIES:
            raise NotImplementedError(
                f"{ctx.where}: no exact conversion for the scipy distribution "
                f"{family!r}; supported families are {sorted(PARAMETRIC_FAMILIES)}"
            )
        params = dict(noise.parameters)
        shape_names = [s.strip() for s in (dist.shapes or "").split(",") if s.strip()]

        def scalar(name: str, default: float | None = None) -> jax.Array:
            # scipy's fit returns some parameters as length-1 arrays
            if name not in params and default is None:
                raise ValueError(
                    f"{ctx.where}: scipy {family} lacks parameter {name!r}"
                )
            v = np.asarray(params.pop(name, default), np.float64)
            if v.size != 1:
                raise ValueError(
                    f"{ctx.where}: scipy {family} parameter {name!r} is {v}"
                )
            return ctx.array(v.reshape(()))

        shapes = tuple(scalar(s) for s in shape_names)
        loc, scale = scalar("loc", 0.0), scalar("scale", 1.0)
        if params:
            raise ValueError(
                f"{ctx.where}: unexpected scipy {family} parameters {sorted(params)}"
            )
        return Parametric(shapes=shapes, loc=loc, scale=scale, family=family)


# --- prediction models --------------------------------------------------------------


@functools.singledispatch
def _predictor(model: Any, ctx: _Node, classifier: bool) -> Any:
    raise NotImplementedError(
        f"{ctx.where}: no exact conversion for the prediction model "
        f"{type(model).__module__}.{type(model).__qualname__}"
    )


def _predictor_or_surrogate(model: Any, ctx: _Node, *, classifier: bool) -> Any:
    try:
        return _predictor(model, ctx, classifier)
    except NotImplementedError as err:
        if ctx.run.surrogate is None:
            raise NotImplementedError(
                f"{err}. Pass distill(..., surrogate=True) to replace it by an MLP "
                f"surrogate trained on the mechanism's own inputs and outputs "
                f"(approximate; its fidelity is reported and checked)"
            ) from None
        from jaxscm.distillation._surrogate import fit_surrogate

        return fit_surrogate(model, ctx, classifier=classifier, reason=str(err))


def _register_predictors() -> None:
    from dowhy.gcm.ml.regression import (
        LinearRegressionWithFixedParameter,
        SklearnRegressionModel,
    )

    from jaxscm._linear import Linear
    from jaxscm.distillation._sklearn import register, sklearn_predictor

    register()

    @_predictor.register(LinearRegressionWithFixedParameter)
    def _(model: Any, ctx: _Node, classifier: bool) -> Linear:
        coef = np.asarray(model.coefficients, np.float64).ravel()
        if coef.shape[0] != len(ctx.parents):
            raise ValueError(
                f"{ctx.where}: LinearRegressionWithFixedParameter has {coef.shape[0]} "
                f"coefficients for {len(ctx.parents)} parents"
            )
        return Linear(
            coef=ctx.array(coef),
            intercept=ctx.array(np.float64(np.ravel(model.intercept)[0])),
        )

    @_predictor.register(SklearnRegressionModel)
    def _(model: Any, ctx: _Node, classifier: bool) -> Any:
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted

        try:
            check_is_fitted(model.sklearn_model)
        except NotFittedError:
            raise ValueError(
                f"{ctx.where}: its {type(model.sklearn_model).__name__} is not fitted; "
                f"call gcm.fit before distilling"
            ) from None
        encode = encoders(model, ctx)
        f = sklearn_predictor(model.sklearn_model, ctx, classifier)
        if encode is None:
            return f
        steps = f.steps if isinstance(f, Pipeline) else (f,)
        return Pipeline(steps=(encode, *steps))


_registered = False


def _ensure_registered() -> None:
    """Registers the DoWhy/sklearn conversions (imports them on first use only)."""
    global _registered
    if not _registered:
        _register_mechanisms()
        _register_noise()
        _register_predictors()
        from jaxscm.distillation._marginals import register

        register(_mechanism, _predictor_or_surrogate, _numeric_node)
        _registered = True
