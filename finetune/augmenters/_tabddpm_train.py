"""TabDDPM's compiled training loop and ancestral sampler (used by `_tabddpm`).

The denoiser sees one flat row: the noised numeric scores, then the one-hot codes
of each categorical column; its output is the predicted noise, then each
categorical column's x_0 logits. `Layout` maps between that flat form and the
padded (b, m, K_max) form of `_tabddpm_diffusion`.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from finetune.augmenters import _tabddpm_diffusion as dif

CHUNK = 100  # training steps per compiled call (the time budget is checked between)


@dataclasses.dataclass(frozen=True)
class Layout:
    """Static shapes of one fitted table: numeric width, categories, steps.

    Hashable: it is a static argument of the compiled functions, so fits of tables
    of the same shape (and options) reuse them.
    """

    d_num: int
    n_categories: tuple[int, ...]
    T: int

    @property
    def m(self) -> int:
        """Categorical columns."""
        return len(self.n_categories)

    @property
    def k_max(self) -> int:
        """Most categories of a categorical column (1 without any)."""
        return max(self.n_categories, default=1)

    @property
    def mask(self) -> np.ndarray:
        """(m, K_max) real categories."""
        k = np.asarray(self.n_categories, np.int64).reshape(-1)
        return np.arange(self.k_max)[None, :] < k[:, None]

    @property
    def flat_index(self) -> np.ndarray:
        """Flat output position of padded cell (i, c); padding reads position 0."""
        k = np.asarray(self.n_categories, np.int64).reshape(-1)
        offsets = np.concatenate([[0], np.cumsum(k)[:-1]]).astype(np.int64)
        return np.where(self.mask, offsets[:, None] + np.arange(self.k_max), 0)

    @property
    def valid(self) -> np.ndarray:
        """The padded cells in flat order."""
        return np.flatnonzero(self.mask.ravel())

    @property
    def d_in(self) -> int:
        """Width of the denoiser's input and output."""
        return self.d_num + sum(self.n_categories)

    @property
    def schedule(self) -> dif.Schedule:
        """The cosine schedule of T steps."""
        return dif.cosine_schedule(self.T)


@dataclasses.dataclass(frozen=True)
class Optim:
    """The optimiser's options (static): AdamW, learning rate decayed linearly."""

    steps: int
    batch: int
    learning_rate: float
    weight_decay: float

    def make(self) -> Any:
        """The optax transformation."""
        import optax

        return optax.adamw(
            optax.linear_schedule(self.learning_rate, 0.0, self.steps),
            weight_decay=self.weight_decay,
        )


def _forward(
    graphdef: Any,
    params: Any,
    lay: Layout,
    x_num: jax.Array,
    x_cat: jax.Array,
    t: jax.Array,
    y: jax.Array,
    key: jax.Array | None,
) -> tuple[jax.Array, jax.Array]:
    from flax import nnx

    parts = [x_num]
    if lay.m:
        onehot = jax.nn.one_hot(x_cat, lay.k_max, dtype=jnp.float32)
        parts.append(onehot.reshape(x_cat.shape[0], -1)[:, lay.valid])
    out = nnx.merge(graphdef, params)(jnp.concatenate(parts, axis=1), t, y, key)
    eps = out[:, : lay.d_num]
    logits = jnp.take(out[:, lay.d_num :], jnp.asarray(lay.flat_index), axis=1)
    return eps, logits


def _loss(
    graphdef: Any,
    params: Any,
    lay: Layout,
    key: jax.Array,
    x_num: jax.Array,
    x_cat: jax.Array,
    y: jax.Array,
) -> jax.Array:
    s, mask = lay.schedule, jnp.asarray(lay.mask)
    kt, kn, kc, kd = jax.random.split(key, 4)
    t = jax.random.randint(kt, y.shape, 0, lay.T, dtype=jnp.int32)
    noise = jax.random.normal(kn, x_num.shape, jnp.float32)
    xn_t = dif.gaussian_q_sample(s, x_num, t, noise)
    xc_t = dif.multinomial_q_sample(s, kc, x_cat, t, mask) if lay.m else x_cat
    eps, logits = _forward(graphdef, params, lay, xn_t, xc_t, t, y, kd)
    loss = jnp.zeros((), jnp.float32)
    if lay.d_num:
        loss = loss + jnp.mean((eps - noise) ** 2)
    if lay.m:
        loss = loss + jnp.mean(dif.multinomial_loss(s, x_cat, xc_t, t, logits, mask))
    return loss


@functools.partial(jax.jit, static_argnames=("graphdef", "lay", "optim"))
def _run(
    params: Any,
    state: Any,
    key: jax.Array,
    start: jax.Array,
    data: tuple[jax.Array, ...],
    *,
    graphdef: Any,
    lay: Layout,
    optim: Optim,
) -> tuple[Any, Any, jax.Array]:
    # CHUNK training steps from step `start`, one compiled scan
    import optax

    opt, n = optim.make(), data[2].shape[0]
    grad = jax.value_and_grad(lambda p, *a: _loss(graphdef, p, lay, *a))

    def step(carry: Any, i: jax.Array) -> tuple[Any, jax.Array]:
        params, state = carry
        kb, kl = jax.random.split(jax.random.fold_in(key, i))
        batch = data
        if optim.batch < n:
            idx = jax.random.permutation(kb, n)[: optim.batch]
            batch = tuple(a[idx] for a in data)
        loss, g = grad(params, kl, *batch)
        updates, new_state = opt.update(g, state, params)
        new_params = optax.apply_updates(params, updates)
        # steps past the last one (the final chunk's tail) change nothing
        live = i < optim.steps
        keep = jax.tree.map(
            lambda a, b: jnp.where(live, a, b), (new_params, new_state), (params, state)
        )
        return keep, loss

    carry, losses = jax.lax.scan(
        step, (params, state), start + jnp.arange(CHUNK, dtype=jnp.int32)
    )
    return *carry, losses


def train(
    graphdef: Any,
    params: Any,
    lay: Layout,
    optim: Optim,
    data: tuple[jax.Array, ...],
    key: jax.Array,
    time_budget: float | None,
) -> tuple[Any, np.ndarray, float]:
    """Trains the denoiser; returns (params, per-step losses, seconds)."""
    t0 = time.perf_counter()
    losses: list[np.ndarray] = []
    # optax mixes Python scalars with int32 step counts, which strict dtype
    # promotion (the test suite's setting) refuses
    with jax.numpy_dtype_promotion("standard"):
        state = optim.make().init(params)
        for start in range(0, optim.steps, CHUNK):
            params, state, chunk = _run(
                params,
                state,
                key,
                jnp.int32(start),
                data,
                graphdef=graphdef,
                lay=lay,
                optim=optim,
            )
            losses.append(np.asarray(chunk)[: optim.steps - start])
            if time_budget is not None and time.perf_counter() - t0 > time_budget:
                break
    history = np.concatenate(losses).astype(np.float32)
    if not np.isfinite(history).all():
        raise FloatingPointError(
            f"tabddpm: the training loss became non-finite at step "
            f"{int(np.argmin(np.isfinite(history)))}; lower learning_rate"
        )
    return params, history, time.perf_counter() - t0


@functools.partial(jax.jit, static_argnames=("graphdef", "lay"))
def sample_block(
    params: Any, key: jax.Array, y: jax.Array, *, graphdef: Any, lay: Layout
) -> tuple[jax.Array, jax.Array]:
    """The whole ancestral chain for (b,) labels: (b, d_num) scores, (b, m) codes."""
    s, mask = lay.schedule, jnp.asarray(lay.mask)
    b = y.shape[0]
    kn, kc, kloop = jax.random.split(key, 3)
    x_num = jax.random.normal(kn, (b, lay.d_num), jnp.float32)
    uniform = jnp.broadcast_to(
        jnp.where(mask, 0.0, dif.NEG).astype(jnp.float32), (b, lay.m, lay.k_max)
    )
    x_cat = jax.random.categorical(kc, uniform).astype(jnp.int32)

    def body(i: jax.Array, carry: tuple[jax.Array, ...]) -> tuple[jax.Array, ...]:
        xn, xc = carry
        step = lay.T - 1 - i
        t = jnp.full((b,), step, jnp.int32)
        k1, k2 = jax.random.split(jax.random.fold_in(kloop, step))
        eps, logits = _forward(graphdef, params, lay, xn, xc, t, y, None)
        noise = jax.random.normal(k1, xn.shape, jnp.float32)
        xn = dif.gaussian_p_step(s, xn, eps, t, noise, dif.Z_MAX)
        if lay.m:
            xc = dif.multinomial_p_step(s, k2, xc, logits, t, mask).astype(jnp.int32)
        return xn, xc

    return jax.lax.fori_loop(0, lay.T, body, (x_num, x_cat))
