"""Endless streams of fresh sample batches, compiled once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bridge._torch import to_torch
from jaxscm import sample
from jaxscm._sample import sampler_input


def _batch(key: jax.Array, step: jax.Array, model: Any, n: int) -> jax.Array:
    return sample(jax.random.fold_in(key, step), model, n)


# One jitted function for every stream: jit caches by model structure and batch size,
# so new streams over same-shaped models (or refitted parameters) reuse the compile,
# and the step counter is a traced argument, so advancing it never recompiles.
batch_fn = jax.jit(_batch, static_argnums=3)


class NonFiniteSampleError(ValueError):
    """A sampled value is NaN or infinite: the model's parameters are broken."""


def first_bad_column(x: jax.Array) -> jax.Array:
    """Index of the first column of `x` (..., d) holding a non-finite value, or -1.

    One reduction inside the compiled call that produces `x`, so checking costs a
    pass over the rows, not a host round trip per column.
    """
    bad = ~jnp.isfinite(x).reshape(-1, x.shape[-1]).all(axis=0)
    return jnp.where(bad.any(), jnp.argmax(bad), -1)


def raise_if_not_finite(bad: Any, names: Any, where: str) -> None:
    """Raises `NonFiniteSampleError` naming column `names[bad]` when `bad` >= 0."""
    b = int(bad)
    if b >= 0:
        raise NonFiniteSampleError(
            f"{where}: sampled column {names[b]!r} holds NaN or infinite values; the "
            f"model's parameters for that node (or its parents) are broken - refit "
            f"it, or check the model file with jaxscm.load"
        )


def _checked_batch(
    key: jax.Array, step: jax.Array, model: Any, n: int
) -> tuple[jax.Array, jax.Array]:
    x = _batch(key, step, model, n)
    return x, first_bad_column(x)


# `batch_fn` plus the finite check, for the writers (Parquet/CSV).
checked_batch_fn = jax.jit(_checked_batch, static_argnums=3)


def _labelled(
    key: jax.Array,
    step: jax.Array,
    model: Any,
    n: int,
    index: jax.Array,
    features: jax.Array,
    fill: jax.Array,
    target: int,
    n_classes: int,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    x = _batch(key, step, model, n)
    rows = x.reshape(-1, x.shape[-1])[index]
    picked = rows[:, jnp.maximum(features, 0)]
    left_out = (features < 0)[None, :]
    X = jnp.where(left_out, fill.astype(rows.dtype)[None, :], picked)
    code = rows[:, target]
    ok = jnp.isfinite(code) & (code >= 0) & (code < n_classes)
    # Rows whose target is not a class go last (a stable sort keeps the order of the
    # others), so the host keeps the first `count` rows without a boolean mask.
    order = jnp.argsort(~ok, stable=True)
    y = jnp.where(ok, code, 0).astype(jnp.int32)
    # Features of kept rows must be finite (a filled-in constant may be NaN: a
    # column missing throughout the training rows).
    broken = (~jnp.isfinite(X) & ok[:, None] & ~left_out).any(axis=0)
    bad = jnp.where(broken.any(), jnp.argmax(broken), -1)
    return X[order].astype(jnp.float32), y[order], ok.sum(), bad


# The synthetic rows of one fine-tuning step: the ensemble's batch, its members'
# rows taken in the order `index` gives (the pooling shuffle, or one member's rows),
# the encoder's columns selected and the target turned into labels, all in one call.
# Compiled once per model structure, batch size, index length and (target,
# n_classes); the step, index and feature positions are traced.
labelled_fn = jax.jit(_labelled, static_argnums=(3, 7, 8))


def labelled_rows(
    key: jax.Array,
    step: int,
    model: Any,
    batch_size: int,
    index: np.ndarray,
    *,
    features: np.ndarray,
    fill: np.ndarray,
    target: int,
    n_classes: int,
) -> tuple[Any, Any, Any]:
    """Dispatches one step's labelled rows (asynchronously; see `to_host`).

    Args:
      key: PRNG key of the stream; the batch is `sample(fold_in(key, step), ...)`.
      step: the step index (traced: a new step never recompiles).
      model: a `jaxscm.SCM` or `jaxscm.Ensemble`.
      batch_size: rows per member.
      index: (m,) rows of the (k * batch_size, d) flattened batch to keep, in order.
      features: (f,) column of each output feature in the rows, -1 for `fill`.
      fill: (f,) value of the features whose column is -1.
      target: column holding the class codes.
      n_classes: codes 0..n_classes-1 are classes; other rows are dropped.

    Returns:
      JAX arrays (X (m, f) float32, y (m,) int32, count, bad) and the names of the
      features' columns: the rows whose target is a class come first, in `index`
      order, and number `count`; `bad` is the first feature holding a non-finite
      value (-1: none), which `to_host` turns into an error.
    """
    names = tuple(model.columns[j].name if j >= 0 else "(filled in)" for j in features)
    return *labelled_fn(
        key,
        step,
        sampler_input(model),
        batch_size,
        np.asarray(index, np.int32),
        np.asarray(features, np.int32),
        np.asarray(fill, np.float32),
        int(target),
        int(n_classes),
    ), names


def to_host(out: tuple[Any, ...]) -> tuple[np.ndarray, np.ndarray]:
    """`labelled_rows`'s result as NumPy (X float32, y int64), invalid rows cut off.

    Raises:
      NonFiniteSampleError: a kept row holds a NaN or infinite feature (naming the
        column).
    """
    X, y, count, bad, names = out
    raise_if_not_finite(bad, names, "synthetic rows")
    c = int(count)
    return np.asarray(X)[:c], np.asarray(y)[:c].astype(np.int64)


def stream(
    key: jax.Array,
    model: Any,
    batch_size: int,
    *,
    as_torch: bool = True,
    start: int = 0,
    n_batches: int | None = None,
) -> Iterator[Any]:
    """Yields fresh batches of samples forever (or `n_batches` times).

    Batch `i` is `jaxscm.sample(jax.random.fold_in(key, i), model, batch_size)`, so a
    stream is reproducible from its key and can resume at any step with `start`. The
    sampler is compiled once; the next batch is dispatched before the current one is
    yielded, so JAX computes it while the consumer (e.g. a torch training step) works.

    Args:
      key: PRNG key of the stream.
      model: a `jaxscm.SCM` (batches (b, d)) or `jaxscm.Ensemble` (batches (k, b, d)).
      batch_size: rows per batch (per member for an ensemble).
      as_torch: yield torch tensors (zero-copy through DLPack) instead of JAX arrays.
      start: index of the first batch.
      n_batches: stop after this many batches (None: never stop).

    Yields:
      One batch per step, columns in `model.columns` order.

    Raises:
      ValueError: for a non-positive batch size or negative start / n_batches.

    Examples:
      >>> import jax
      >>> from jaxscm import random_scm
      >>> batches = stream(jax.random.key(0), random_scm(jax.random.key(1), 3), 4,
      ...                  n_batches=2)
      >>> [tuple(b.shape) for b in batches]
      [(4, 3), (4, 3)]
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if start < 0 or (n_batches is not None and n_batches < 0):
        raise ValueError(f"start and n_batches must be >= 0, got {start}, {n_batches}")
    step = start
    stop = None if n_batches is None else start + n_batches
    if stop is not None and step >= stop:
        return
    model = sampler_input(model)  # the ensemble's plan, stacked once on the host
    pending = batch_fn(key, step, model, batch_size)
    while True:
        current = pending
        step += 1
        if stop is None or step < stop:
            pending = batch_fn(key, step, model, batch_size)
        yield to_torch(current) if as_torch else current
        if stop is not None and step >= stop:
            return
