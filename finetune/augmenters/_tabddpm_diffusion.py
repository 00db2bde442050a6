"""TabDDPM's diffusion processes as pure JAX functions (reimplemented from the papers).

Two forward processes share one cosine schedule (Nichol & Dhariwal 2021), indexed
t = 0..T-1 (t = 0 is the first noising step):

* Gaussian, on quantile-normalised numeric columns (Ho et al. 2020):
  q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I); the denoiser predicts the
  noise (epsilon), trained with the mean squared error.
* Multinomial, on categorical columns (Hoogeboom et al. 2021), in log space:
  q(x_t | x_0) = Cat(abar_t onehot(x_0) + (1 - abar_t) / K). The denoiser predicts
  x_0's logits (the x_0-parametrisation); p(x_{t-1} | x_t) is the true posterior
  q(x_{t-1} | x_t, x_0) with x_0's predicted probabilities plugged in, and the loss
  is T * KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) (the decoder's negative
  log-likelihood at t = 0) plus the prior KL(q(x_{T-1} | x_0) || uniform), averaged
  over the categorical columns, as TabDDPM does.

Categorical columns with different numbers of categories are held padded, as
(..., m, K_max) log-probabilities with `mask` (m, K_max) marking the real
categories; padded cells hold `NEG` (log 0) and never get probability.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

NEG = -1e30  # log(0) of a padded category; finite, so gradients stay finite
# the largest |score| of the quantile-normal transform: ndtri(1 - 1e-7); the data's
# x_0 never lies outside [-Z_MAX, Z_MAX]
Z_MAX = 5.199337582290661
_COSINE_S = 0.008
_MAX_BETA = 0.999


class Schedule(NamedTuple):
    """The noise schedule's per-step arrays, each (T,) float32 (index t = 0..T-1)."""

    betas: jax.Array
    alpha_bar: jax.Array  # prod_{s <= t} (1 - beta_s)
    alpha_bar_prev: jax.Array  # alpha_bar[t - 1], 1 at t = 0
    log_alpha: jax.Array
    log_1m_alpha: jax.Array
    log_alpha_bar: jax.Array
    log_1m_alpha_bar: jax.Array
    post_coef_x0: jax.Array  # posterior mean = coef_x0 * x_0 + coef_xt * x_t
    post_coef_xt: jax.Array
    post_log_var: jax.Array  # log posterior variance, t = 0 clipped to t = 1's


def cosine_alpha_bar(u: np.ndarray) -> np.ndarray:
    """Nichol & Dhariwal's f(u) / f(0), f(u) = cos(((u + s) / (1 + s)) pi / 2)^2.

    Examples:
      >>> float(cosine_alpha_bar(np.array([0.0]))[0])
      1.0
    """
    f = np.cos((np.asarray(u, np.float64) + _COSINE_S) / (1 + _COSINE_S) * np.pi / 2)
    f0 = np.cos(_COSINE_S / (1 + _COSINE_S) * np.pi / 2)
    return (f / f0) ** 2


def cosine_schedule(T: int) -> Schedule:
    """The cosine schedule: beta_t = min(1 - abar((t+1)/T) / abar(t/T), 0.999).

    Computed in float64, stored as float32.

    Examples:
      >>> s = cosine_schedule(100)
      >>> s.betas.shape, float(s.alpha_bar_prev[0])
      ((100,), 1.0)
    """
    if T < 2:
        raise ValueError(f"the diffusion needs at least 2 steps, got T={T}")
    u = np.arange(T + 1, dtype=np.float64) / T
    ab = cosine_alpha_bar(u)
    betas = np.minimum(1.0 - ab[1:] / ab[:-1], _MAX_BETA)
    alphas = 1.0 - betas
    log_alpha = np.log(alphas)
    log_alpha_bar = np.cumsum(log_alpha)
    alpha_bar = np.exp(log_alpha_bar)
    alpha_bar_prev = np.concatenate([[1.0], alpha_bar[:-1]])
    post_var = betas * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)
    arrays = Schedule(
        betas=betas,
        alpha_bar=alpha_bar,
        alpha_bar_prev=alpha_bar_prev,
        log_alpha=log_alpha,
        log_1m_alpha=np.log1p(-alphas),
        log_alpha_bar=log_alpha_bar,
        log_1m_alpha_bar=np.log1p(-alpha_bar),
        post_coef_x0=betas * np.sqrt(alpha_bar_prev) / (1.0 - alpha_bar),
        post_coef_xt=(1.0 - alpha_bar_prev) * np.sqrt(alphas) / (1.0 - alpha_bar),
        post_log_var=np.log(np.concatenate([post_var[1:2], post_var[1:]])),
    )
    return Schedule(*(jnp.asarray(a, jnp.float32) for a in arrays))


# --- Gaussian --------------------------------------------------------------------


def gaussian_q_mean_var(
    s: Schedule, x0: jax.Array, t: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Mean and variance of q(x_t | x_0) for (b, p) `x0` and (b,) steps `t`."""
    ab = s.alpha_bar[t][:, None]
    return jnp.sqrt(ab) * x0, jnp.broadcast_to(1.0 - ab, x0.shape)


def gaussian_q_sample(
    s: Schedule, x0: jax.Array, t: jax.Array, noise: jax.Array
) -> jax.Array:
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise."""
    mean, var = gaussian_q_mean_var(s, x0, t)
    return mean + jnp.sqrt(var) * noise


def gaussian_p_step(
    s: Schedule,
    xt: jax.Array,
    eps: jax.Array,
    t: jax.Array,
    noise: jax.Array,
    clip: float | None = None,
) -> jax.Array:
    """One ancestral step x_t -> x_{t-1} from the predicted noise (no noise at t = 0).

    x_0 is recovered as (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), and x_{t-1}
    drawn from the Gaussian posterior q(x_{t-1} | x_t, x_0) (its own variance).
    With `clip`, the recovered x_0 is clipped to [-clip, clip] first: near t = T-1
    the recovery divides by sqrt(abar_t) ~ 0.03 and amplifies the denoiser's error.
    """
    ab = s.alpha_bar[t][:, None]
    x0 = (xt - jnp.sqrt(1.0 - ab) * eps) / jnp.sqrt(ab)
    if clip is not None:
        x0 = jnp.clip(x0, -clip, clip)
    mean = s.post_coef_x0[t][:, None] * x0 + s.post_coef_xt[t][:, None] * xt
    std = jnp.where(t > 0, jnp.exp(0.5 * s.post_log_var[t]), 0.0)[:, None]
    return mean + std * noise


# --- multinomial ----------------------------------------------------------------


def _masked(x: jax.Array, mask: jax.Array) -> jax.Array:
    return jnp.where(jnp.broadcast_to(mask, x.shape), x, NEG)


def _log_k(mask: jax.Array) -> jax.Array:
    # (1, m, 1) log number of categories of each column
    return jnp.log(jnp.sum(mask, axis=1, dtype=jnp.float32))[None, :, None]


def log_onehot(codes: jax.Array, mask: jax.Array) -> jax.Array:
    """(b, m) category codes -> (b, m, K_max) log one-hots (log 0 clipped to -69)."""
    onehot = jax.nn.one_hot(codes, mask.shape[1], dtype=jnp.float32)
    return _masked(jnp.log(jnp.maximum(onehot, 1e-30)), mask)


def _log_mix(
    log_x: jax.Array, log_a: jax.Array, log_1m_a: jax.Array, mask: jax.Array
) -> jax.Array:
    # log(a * x + (1 - a) / K) per column, K its own number of categories
    return _masked(
        jnp.logaddexp(
            log_x + log_a[:, None, None], log_1m_a[:, None, None] - _log_k(mask)
        ),
        mask,
    )


def log_q_xt_x0(s: Schedule, log_x0: jax.Array, t: jax.Array, mask: jax.Array):
    """log q(x_t | x_0) = log(abar_t x_0 + (1 - abar_t) / K), (b, m, K_max)."""
    return _log_mix(log_x0, s.log_alpha_bar[t], s.log_1m_alpha_bar[t], mask)


def log_posterior(
    s: Schedule, log_x0: jax.Array, log_xt: jax.Array, t: jax.Array, mask: jax.Array
) -> jax.Array:
    """log q(x_{t-1} | x_t, x_0), normalised over each column's categories.

    Proportional to q(x_t | x_{t-1}) q(x_{t-1} | x_0); at t = 0, q(x_{-1} | x_0) is
    x_0 itself. `log_x0` may be predicted log-probabilities (the x_0-
    parametrisation).
    """
    prev = jnp.maximum(t - 1, 0)
    ev = jnp.where((t == 0)[:, None, None], log_x0, log_q_xt_x0(s, log_x0, prev, mask))
    step = _log_mix(log_xt, s.log_alpha[t], s.log_1m_alpha[t], mask)
    unnorm = _masked(ev + step, mask)
    return _masked(unnorm - jax.nn.logsumexp(unnorm, axis=2, keepdims=True), mask)


def log_predicted_x0(logits: jax.Array, mask: jax.Array) -> jax.Array:
    """The denoiser's (b, m, K_max) logits -> per-column log-softmax."""
    z = _masked(logits, mask)
    return _masked(z - jax.nn.logsumexp(z, axis=2, keepdims=True), mask)


def _kl(log_p: jax.Array, log_q: jax.Array, mask: jax.Array) -> jax.Array:
    # sum_k p (log p - log q) per column, (b, m)
    m = jnp.broadcast_to(mask, log_p.shape)
    return jnp.sum(jnp.where(m, jnp.exp(log_p) * (log_p - log_q), 0.0), axis=2)


def multinomial_loss(
    s: Schedule,
    x0: jax.Array,
    xt: jax.Array,
    t: jax.Array,
    logits: jax.Array,
    mask: jax.Array,
) -> jax.Array:
    """TabDDPM's multinomial loss per row, (b,): mean over the m columns of
    T * (KL_t, or the decoder NLL at t = 0) + KL(q(x_{T-1} | x_0) || uniform).

    Args:
      s: the schedule.
      x0: (b, m) true category codes.
      xt: (b, m) noised category codes at steps `t`.
      t: (b,) steps.
      logits: (b, m, K_max) the denoiser's logits of x_0.
      mask: (m, K_max) real categories.
    """
    T = s.betas.shape[0]
    log_x0, log_xt = log_onehot(x0, mask), log_onehot(xt, mask)
    log_true = log_posterior(s, log_x0, log_xt, t, mask)
    log_model = log_posterior(s, log_predicted_x0(logits, mask), log_xt, t, mask)
    kl = _kl(log_true, log_model, mask)
    full = jnp.broadcast_to(mask, log_x0.shape)
    nll = -jnp.sum(jnp.where(full, jnp.exp(log_x0) * log_model, 0.0), axis=2)
    lt = jnp.where((t == 0)[:, None], nll, kl)
    last = jnp.full(t.shape, T - 1, t.dtype)
    log_qT = log_q_xt_x0(s, log_x0, last, mask)
    log_uniform = _masked(jnp.broadcast_to(-_log_k(mask), log_qT.shape), mask)
    prior = _kl(log_qT, log_uniform, mask)
    return jnp.mean(T * lt + prior, axis=1)


def multinomial_q_sample(
    s: Schedule, key: jax.Array, x0: jax.Array, t: jax.Array, mask: jax.Array
) -> jax.Array:
    """Draws (b, m) codes x_t ~ q(x_t | x_0)."""
    return jax.random.categorical(key, log_q_xt_x0(s, log_onehot(x0, mask), t, mask))


def multinomial_p_step(
    s: Schedule,
    key: jax.Array,
    xt: jax.Array,
    logits: jax.Array,
    t: jax.Array,
    mask: jax.Array,
) -> jax.Array:
    """One ancestral step: (b, m) codes x_{t-1} ~ p(x_{t-1} | x_t)."""
    log_p = log_posterior(
        s, log_predicted_x0(logits, mask), log_onehot(xt, mask), t, mask
    )
    return jax.random.categorical(key, log_p)
