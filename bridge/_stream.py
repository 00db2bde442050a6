"""Endless streams of fresh sample batches, compiled once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jax

from bridge._torch import to_torch
from jaxscm import sample


def _batch(key: jax.Array, step: jax.Array, model: Any, n: int) -> jax.Array:
    return sample(jax.random.fold_in(key, step), model, n)


# One jitted function for every stream: jit caches by model structure and batch size,
# so new streams over same-shaped models (or refitted parameters) reuse the compile,
# and the step counter is a traced argument, so advancing it never recompiles.
batch_fn = jax.jit(_batch, static_argnums=3)


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
    pending = batch_fn(key, step, model, batch_size)
    while True:
        current = pending
        step += 1
        if stop is None or step < stop:
            pending = batch_fn(key, step, model, batch_size)
        yield to_torch(current) if as_torch else current
        if stop is not None and step >= stop:
            return
