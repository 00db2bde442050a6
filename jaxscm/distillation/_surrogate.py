"""Opt-in lossy distillation: surrogates for what has no exact conversion.

`distill(..., surrogate=...)` uses this module for prediction models without an exact
conversion (SVR, k-NN, Gaussian processes, AdaBoost, AutoGluon, user models): a flax
MLP is trained with optax on the model's own input/output pairs, its inputs being
the parents as DoWhy's own model samples them. The trained weights are copied into a
core `MLP` (in a `Pipeline` with one-hot encoding and standardisation), so the result
saves, loads and stacks like an exact conversion. Fidelity is measured on held-out
rows, R^2 of the predictions for a regression model and agreement of the most likely
class for a classifier; it is always reported (`SurrogateWarning`) and a fidelity
below `SurrogateOptions.min_fidelity` raises `SurrogateFidelityError`.

A noise or root distribution without an exact conversion becomes an `Empirical` of
`n_samples` of its own draws.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxscm._features import Affine, Encode, Pipeline, Standardize
from jaxscm._mlp import MLP
from jaxscm._noise import Empirical


class SurrogateWarning(UserWarning):
    """A mechanism part was replaced by an approximate surrogate (with its fidelity)."""


class SurrogateFidelityError(ValueError):
    """A surrogate's held-out fidelity is below the requested minimum."""

    def __init__(self, message: str, fidelity: float) -> None:
        super().__init__(message)
        self.fidelity = fidelity


@dataclasses.dataclass(frozen=True)
class SurrogateOptions:
    """How `distill` trains surrogates.

    Attributes:
      min_fidelity: refuse a surrogate whose held-out R^2 (regression) or class
        agreement (classification) is below this.
      n_samples: rows drawn from the DoWhy model to train and test on.
      hidden: hidden layer widths of the MLP.
      steps: full-batch Adam steps.
      learning_rate: Adam learning rate.
      holdout: fraction of the rows kept out of training to measure fidelity.
      seed: seeds DoWhy's draws (NumPy's global RNG, restored afterwards) and the
        MLP's initialisation.
    """

    min_fidelity: float = 0.95
    n_samples: int = 4096
    hidden: tuple[int, ...] = (64, 64)
    steps: int = 1500
    learning_rate: float = 3e-3
    holdout: float = 0.25
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_fidelity <= 1.0:
            raise ValueError(f"min_fidelity must be in [0, 1], got {self.min_fidelity}")
        if self.n_samples < 20 or self.steps < 1 or not 0.0 < self.holdout < 1.0:
            raise ValueError(
                "SurrogateOptions needs n_samples >= 20, steps >= 1 and 0 < holdout < 1"
            )


def surrogate_options(surrogate: Any) -> SurrogateOptions | None:
    """Normalises `distill`'s `surrogate=` (False/None, True, float, options)."""
    if surrogate is None or surrogate is False:
        return None
    if surrogate is True:
        return SurrogateOptions()
    if isinstance(surrogate, SurrogateOptions):
        return surrogate
    if isinstance(surrogate, (float, int)):
        return SurrogateOptions(min_fidelity=float(surrogate))
    raise TypeError(
        f"surrogate must be False, True, a minimum fidelity in [0, 1] or a "
        f"SurrogateOptions, got {type(surrogate).__name__}"
    )


@contextlib.contextmanager
def _numpy_seeded(seed: int) -> Iterator[None]:
    # DoWhy draws from NumPy's global RNG; seed it here and give the caller its state
    # back afterwards.
    state = np.random.get_state()  # noqa: NPY002 - DoWhy's global RNG
    np.random.seed(seed)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def draw_gcm_samples(causal_model: Any, options: SurrogateOptions) -> Any:
    """`gcm.draw_samples` of the DoWhy model, seeded, as a DataFrame."""
    from dowhy import gcm

    with _numpy_seeded(options.seed):
        return gcm.draw_samples(causal_model, options.n_samples)


def empirical_surrogate(noise: Any, ctx: Any, *, root: bool, what: str) -> Empirical:
    """An `Empirical` of `n_samples` draws of a distribution DoWhy can sample."""
    options = ctx.run.surrogate
    with _numpy_seeded(options.seed):
        draws = np.asarray(noise.draw_samples(options.n_samples)).ravel()
    values = ctx.column.code_of(draws) if root else draws.astype(np.float64)
    warnings.warn(
        f"{ctx.where}: the {'root' if root else 'noise'} distribution {what} has no "
        f"exact conversion; replaced by an Empirical of {options.n_samples} of its own "
        f"draws (approximate)",
        SurrogateWarning,
        stacklevel=4,
    )
    return Empirical(values=ctx.array(values))


def _train(x: np.ndarray, y: np.ndarray, options: SurrogateOptions, classifier: bool):
    """Trains a flax MLP on standardised inputs; returns (weights, biases)."""
    import flax.linen as nn
    import optax

    widths = (*options.hidden, y.shape[1])

    class Net(nn.Module):
        @nn.compact
        def __call__(self, h: jax.Array) -> jax.Array:
            for w in widths[:-1]:
                h = jnp.tanh(nn.Dense(w)(h))
            return nn.Dense(widths[-1])(h)

    net = Net()
    xj, yj = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    params = net.init(jax.random.key(options.seed), xj[:1])
    opt = optax.adam(options.learning_rate)

    def loss(p: Any) -> jax.Array:
        out = net.apply(p, xj)
        if classifier:  # cross-entropy against the model's probabilities
            return -jnp.mean(jnp.sum(yj * jax.nn.log_softmax(out), axis=1))
        return jnp.mean((out - yj) ** 2)

    @jax.jit
    def step(p: Any, s: Any) -> tuple[Any, Any]:
        g = jax.grad(loss)(p)
        updates, s = opt.update(g, s, p)
        return optax.apply_updates(p, updates), s

    # optax mixes Python scalars and int32 step counts, which strict dtype promotion
    # (what the test suite turns on for the core) refuses.
    with jax.numpy_dtype_promotion("standard"):
        state = opt.init(params)
        for _ in range(options.steps):
            params, state = step(params, state)
    layers = [params["params"][f"Dense_{i}"] for i in range(len(widths))]
    return [np.asarray(d["kernel"]) for d in layers], [
        np.asarray(d["bias"]) for d in layers
    ]


def fit_surrogate(model: Any, ctx: Any, *, classifier: bool, reason: str) -> Pipeline:
    """An MLP surrogate of a DoWhy prediction model, trained on its own outputs.

    Raises:
      SurrogateFidelityError: held-out fidelity below `min_fidelity`.
    """
    options = ctx.run.surrogate
    df = ctx.run.samples()
    raw = [df[p].to_numpy() for p in ctx.parents]
    x_dowhy = np.column_stack(raw) if raw else np.zeros((len(df), 0))
    if classifier:
        y = np.asarray(model.predict_probabilities(x_dowhy), np.float64)
    else:
        y = np.asarray(model.predict(x_dowhy), np.float64).reshape(-1, 1)
    x = (
        np.column_stack(
            [c.code_of(r) for r, c in zip(raw, ctx.parent_columns, strict=True)]
        )
        if raw
        else np.zeros((len(df), 0))
    )

    x_codes = x
    steps: list[Any] = []
    cat = [j for j, c in enumerate(ctx.parent_columns) if c.kind == "categorical"]
    if cat:
        encode = Encode(
            tables=tuple(
                jnp.eye(ctx.parent_columns[j].n_categories, dtype=ctx.dtype)
                for j in cat
            ),
            columns=tuple(cat),
        )
        steps.append(encode)
        x = np.asarray(
            encode(
                jnp.asarray(
                    x, jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
                )
            ),
            np.float64,
        )
    mean, std = x.mean(axis=0), x.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    steps.append(Standardize(mean=ctx.array(mean), scale=ctx.array(std)))
    z = (x - mean) / std
    y_mean = 0.0 if classifier else float(y.mean())
    y_std = 1.0 if classifier else float(y.std()) or 1.0
    t = (y - y_mean) / y_std

    rng = np.random.default_rng(options.seed)
    perm = rng.permutation(len(z))
    n_test = max(1, int(options.holdout * len(z)))
    test, train = perm[:n_test], perm[n_test:]
    weights, biases = _train(z[train], t[train], options, classifier)
    mlp = MLP(
        weights=tuple(ctx.array(w) for w in weights),
        biases=tuple(ctx.array(b) for b in biases),
        activation="tanh",
        output="softmax" if classifier else "identity",
    )
    steps.append(mlp)
    if not classifier:
        steps.append(Affine(scale=ctx.array(y_std), offset=ctx.array(y_mean)))
    f = Pipeline(steps=tuple(steps))

    pred = np.asarray(f(jnp.asarray(x_codes[test], ctx.dtype)), np.float64)
    if classifier:
        fidelity = float(np.mean(pred.argmax(1) == y[test].argmax(1)))
        metric = "class agreement"
    else:
        resid = np.sum((pred.ravel() - y[test, 0]) ** 2)
        total = np.sum((y[test, 0] - y[test, 0].mean()) ** 2)
        fidelity = float(1.0 - resid / total) if total > 0 else float(resid == 0)
        metric = "R^2"
    message = (
        f"{reason}; replaced by an MLP surrogate {options.hidden} trained on "
        f"{len(train)} of the model's own input/output pairs, held-out {metric} "
        f"{fidelity:.4f} (minimum {options.min_fidelity})"
    )
    if fidelity < options.min_fidelity:
        raise SurrogateFidelityError(
            f"{message}: refused. Lower the minimum (surrogate=<float>) only if an "
            f"approximate mechanism is acceptable, or fit a supported model",
            fidelity,
        )
    warnings.warn(message, SurrogateWarning, stacklevel=4)
    return f
