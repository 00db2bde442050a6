"""A TabPFN-style prior over random SCMs: batches of classification datasets.

Every dataset is drawn from its own random structural causal model, with the graph
held as data (a masked lower-triangular adjacency) so that one compiled function
`vmap`s over datasets with different DAGs, mechanisms and noise:

* DAG: a Bernoulli(p) strictly lower-triangular adjacency over `n_nodes` nodes, p
  drawn per dataset; node order is topological.
* Mechanisms, per node: linear, a one-hidden-layer MLP (tanh / relu / sin / abs
  activation) or a sum of random depth-`tree_depth` decision trees on the node's
  parents (the same families as `jaxscm.random_scm`, as arrays instead of static
  structure), plus noise; roots are noise only. Each node is standardised over rows,
  which keeps deep graphs from blowing up or collapsing.
* Noise, per node: Gaussian, uniform, Laplace or skewed (log-normal) with a scale
  drawn log-uniformly.
* Target: a random non-root node cut at random quantiles into 2..`max_classes`
  classes (every class gets at least a minimum share), labels permuted.
* Features: a random subset of the other nodes, 1..`max_features` of them (the rest
  zero-padded: TabPFN's encoder drops constant columns), through random monotone
  warps; some discretised into 2..`max_categories` permuted integer codes
  (categorical); some cells missing (NaN, with a mask).

`PriorConfig()` is the prior of the first shipped checkpoint (v1, <= 16 features).
`PRIOR_V2` widens it towards real tables: up to 100 features (counts log-uniform, so
small tables stay common), a capped in-degree so wide graphs keep a few strong parents
per node, categorical columns with up to 20 levels of skewed frequency (some ordinal:
codes keep the order of the latent value), in some datasets every column
categorical, strongly imbalanced targets (one class with 1-10 % of the rows) and more
missing cells. Its extra random numbers come from a second key, so the v1 settings
still draw exactly the v1 datasets. Tables wider than `max_features` are left to the
TFM's own per-estimator feature subsampling at inference (tabpfn's
`max_features_per_estimator`, which `finetune.pretrain` sets to `max_features`).

The whole batch is arrays of fixed shape, so the caller jits `sample_prior` once per
(`b`, config) and every fresh key reuses the compile.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

_F32 = jnp.float32


@dataclasses.dataclass(frozen=True)
class PriorConfig:
    """Sizes and rates of the prior (static: part of the compiled shapes).

    Attributes:
      n_rows: rows per dataset.
      n_nodes: SCM nodes per dataset (features and target are drawn from these).
      max_features: feature columns of the output (datasets use 1..max_features).
      min_features: fewest real features per dataset.
      max_classes: most target classes (datasets use 2..max_classes).
      p_binary: probability that a dataset is binary (else classes uniform in
        3..max_classes).
      hidden: hidden width of MLP mechanisms.
      n_trees, tree_depth: size of the tree-sum mechanisms.
      max_edge_prob: edge probability per dataset is uniform in [0.1, max_edge_prob].
      max_categorical: the share of categorical features per dataset is uniform in
        [0, max_categorical] (for half of the datasets; the rest have none).
      max_categories: most categories of a categorical feature.
      p_missing: share of datasets with missing values.
      max_missing: missing rate of such a dataset is uniform in [0, max_missing].
      p_categorical: share of datasets that have categorical features.
      feature_dist: how the feature count is drawn in [min_features, max_features]:
        "uniform" or "log" (log-uniform: small tables as common as wide ones).
      max_parents: if > 0, each dataset draws an expected in-degree c uniform in
        [1, max_parents] and node i's edge probability is min(p, c / i), so wide
        graphs do not give every node dozens of weak parents; 0 leaves p alone.
      p_imbalanced: share of datasets whose target has one rare class holding a
        share uniform in [min_minority, max_minority] of the rows (at least 2 rows).
      min_minority, max_minority: range of that rare class's share.
      p_ordinal: share of categorical columns whose codes keep the order of the
        latent value (ordinal); the others are permuted (nominal).
      cat_min_width: floor of the random bin widths of categorical codes (bins are
        uniform(0, 1) + floor, normalised): small floors give skewed level counts.
    """

    n_rows: int = 256
    n_nodes: int = 24
    max_features: int = 16
    min_features: int = 1
    max_classes: int = 10
    p_binary: float = 0.5
    hidden: int = 16
    n_trees: int = 4
    tree_depth: int = 3
    max_edge_prob: float = 0.6
    max_categorical: float = 0.5
    max_categories: int = 8
    p_missing: float = 0.3
    max_missing: float = 0.2
    p_categorical: float = 0.5
    feature_dist: str = "uniform"
    max_parents: float = 0.0
    p_imbalanced: float = 0.0
    min_minority: float = 0.01
    max_minority: float = 0.10
    p_ordinal: float = 0.0
    cat_min_width: float = 0.25

    def __post_init__(self) -> None:
        if self.n_rows < 2:
            raise ValueError(f"n_rows must be >= 2, got {self.n_rows}")
        if not 1 <= self.min_features <= self.max_features:
            raise ValueError(
                f"need 1 <= min_features <= max_features, got {self.min_features}, "
                f"{self.max_features}"
            )
        if self.n_nodes < self.max_features + 1:
            raise ValueError(
                f"n_nodes ({self.n_nodes}) must exceed max_features "
                f"({self.max_features})"
                " by at least one node for the target"
            )
        if not 2 <= self.max_classes:
            raise ValueError(f"max_classes must be >= 2, got {self.max_classes}")
        if self.max_categories < 2:
            raise ValueError(f"max_categories must be >= 2, got {self.max_categories}")
        for name in (
            "p_binary",
            "max_edge_prob",
            "max_categorical",
            "p_missing",
            "p_categorical",
            "p_imbalanced",
            "p_ordinal",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.max_missing < 1.0:
            raise ValueError(f"max_missing must be in [0, 1), got {self.max_missing}")
        if self.feature_dist not in ("uniform", "log"):
            raise ValueError(
                f"feature_dist must be 'uniform' or 'log', got {self.feature_dist!r}"
            )
        if self.max_parents != 0.0 and self.max_parents < 1.0:
            raise ValueError(
                f"max_parents must be 0 (no cap) or >= 1, got {self.max_parents}"
            )
        if not 0.0 < self.min_minority <= self.max_minority < 0.5:
            raise ValueError(
                "need 0 < min_minority <= max_minority < 0.5, got "
                f"{self.min_minority}, {self.max_minority}"
            )
        if self.cat_min_width <= 0.0:
            raise ValueError(f"cat_min_width must be > 0, got {self.cat_min_width}")


PRIOR_V2 = PriorConfig(
    n_rows=384,
    n_nodes=112,
    max_features=100,
    min_features=2,
    max_categories=20,
    max_categorical=1.0,
    p_categorical=0.6,
    p_missing=0.35,
    max_missing=0.3,
    feature_dist="log",
    max_parents=6.0,
    p_imbalanced=0.2,
    p_ordinal=0.4,
    cat_min_width=0.05,
)
"""Prior v2 (of the `causalmixft-prior2-v3.5-4l` checkpoint, see its model card):
wide tables, many-level and ordinal categoricals, imbalanced targets."""


class PriorBatch(NamedTuple):
    """A batch of b classification datasets of n rows and f feature columns.

    Attributes:
      x: (b, n, f) features; NaN exactly where `missing`; columns at or beyond
        `n_features` are 0.
      y: (b, n) int32 class labels in [0, n_classes).
      missing: (b, n, f) where a cell is missing.
      categorical: (b, f) which columns hold integer category codes.
      n_features: (b,) real feature columns per dataset.
      n_classes: (b,) classes of each target (every class has rows).
    """

    x: Float[Array, "b n f"]
    y: Int[Array, "b n"]
    missing: Bool[Array, "b n f"]
    categorical: Bool[Array, "b f"]
    n_features: Int[Array, " b"]
    n_classes: Int[Array, " b"]


def sample_prior(
    key: jax.Array, b: int, config: PriorConfig = PriorConfig()
) -> PriorBatch:
    """Draws a batch of `b` datasets, each from a fresh random SCM.

    Pure and jit-able; jit it at the edge with `b` and `config` static, e.g.
    `jax.jit(sample_prior, static_argnums=(1, 2))`.

    Args:
      key: PRNG key; dataset i uses `fold_in(key, i)`.
      b: number of datasets.
      config: sizes and rates of the prior.

    Returns:
      A `PriorBatch` with x (b, n_rows, max_features).

    Examples:
      >>> import jax
      >>> batch = sample_prior(jax.random.key(0), 2, PriorConfig(n_rows=32))
      >>> batch.x.shape, batch.y.shape
      ((2, 32, 16), (2, 32))
    """
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(b))
    return jax.vmap(lambda k: _dataset(k, config))(keys)


class _Draws:
    """Slices one uniform and one normal draw into all of a dataset's random numbers.

    Every `jax.random` call site compiles its own threefry kernel, and with ~40 of
    them the prior took minutes to compile on a loaded CPU; two draws compile fast.
    `_budget` states the sizes, and `done` checks (at trace time) that they match.
    """

    def __init__(self, key: jax.Array, n_uniform: int, n_normal: int) -> None:
        k_u, k_z = jax.random.split(key)
        self._u = jax.random.uniform(k_u, (n_uniform,), _F32)
        self._z = jax.random.normal(k_z, (n_normal,), _F32)
        self._iu = self._iz = 0

    def u(self, shape: tuple[int, ...], lo: float = 0.0, hi: float = 1.0) -> Array:
        size = math.prod(shape)
        out = self._u[self._iu : self._iu + size].reshape(shape)
        self._iu += size
        return lo + (hi - lo) * out

    def z(self, shape: tuple[int, ...]) -> Array:
        size = math.prod(shape)
        out = self._z[self._iz : self._iz + size].reshape(shape)
        self._iz += size
        return out

    def int(self, shape: tuple[int, ...], lo: Array | int, hi: Array | int) -> Array:
        """Uniform integers in [lo, hi)."""
        span = jnp.asarray(hi - lo, _F32)
        return lo + jnp.minimum(jnp.floor(self.u(shape) * span), span - 1.0).astype(
            jnp.int32
        )

    def done(self) -> None:
        if (self._iu, self._iz) != (self._u.shape[0], self._z.shape[0]):
            raise AssertionError(
                f"prior draw budget mismatch: used {(self._iu, self._iz)}, "
                f"drew {(self._u.shape[0], self._z.shape[0])}"
            )


def _budget(cfg: PriorConfig) -> tuple[int, int]:
    n, d, f, h, t = cfg.n_rows, cfg.n_nodes, cfg.max_features, cfg.hidden, cfg.n_trees
    m, n_leaf = 2**cfg.tree_depth - 1, 2**cfg.tree_depth
    graph = 2 + d * d
    mechanisms = 3 + 3 * d + 1 + d * t * m + d * n
    target = 3 + 2 * cfg.max_classes
    features = d + 1 + f + f + 2 + 2 * f + 2 * cfg.max_categories * f
    missing = 2 + n * f
    n_u = graph + mechanisms + target + features + missing
    n_z = d + d * d + d * d * h + 2 * d * h + d * t * m + d * t * n_leaf + d * n
    return n_u, n_z


def _budget_v2(cfg: PriorConfig) -> tuple[int, int]:
    # in-degree, imbalance flag and share, ordinal flag per feature column
    return 1 + 2 + cfg.max_features, 0


def _pick(r: Float[Array, "*s"], weights: Float[Array, "*s k"]) -> Int[Array, "*s"]:
    """Index drawn with probability proportional to `weights`, from uniform `r`."""
    c = jnp.cumsum(weights, axis=-1)
    return jnp.sum(c < (r * c[..., -1])[..., None], axis=-1).astype(jnp.int32)


def _noise(
    family: Int[Array, ""], u: Float[Array, " n"], z: Float[Array, " n"]
) -> Float[Array, " n"]:
    """Gaussian, uniform, Laplace or skewed noise, from one uniform and one normal."""
    c = u - 0.5
    lap = -jnp.sign(c) * jnp.log1p(-2.0 * jnp.abs(c) + 1e-7) * 0.7
    return jnp.stack([z, 3.4 * c, lap, jnp.exp(0.8 * z) - 1.4])[family]


def _activation(h: Float[Array, "n h"], kind: Int[Array, ""]) -> Float[Array, "n h"]:
    return jnp.stack([jnp.tanh(h), jax.nn.relu(h), jnp.sin(h), jnp.abs(h)])[kind]


def _tree_sum(
    x: Float[Array, "n d"],
    feature: Int[Array, "t m"],
    threshold: Float[Array, "t m"],
    leaf: Float[Array, "t l"],
    depth: int,
) -> Float[Array, " n"]:
    # Complete trees (children of split i are 2i+1, 2i+2), evaluated without gathers:
    # all splits at once through a one-hot matmul, then each leaf's indicator is the
    # product of the (static) split outcomes on its path. Gather-free keeps the XLA
    # compile short (a gather loop here took ~30 s to compile on a loaded CPU).
    d = x.shape[1]
    t, m = feature.shape
    onehot = (feature.reshape(-1)[None, :] == jnp.arange(d)[:, None]).astype(x.dtype)
    right = (x @ onehot > threshold.reshape(-1)[None, :]).astype(x.dtype)
    right = right.reshape(x.shape[0], t, m)
    total = jnp.zeros((x.shape[0],), x.dtype)
    for path in range(2**depth):
        ind = jnp.ones((x.shape[0], t), x.dtype)
        node = 0
        for level in reversed(range(depth)):
            go_right = (path >> level) & 1
            ind = ind * (right[:, :, node] if go_right else 1.0 - right[:, :, node])
            node = 2 * node + 1 + go_right
        total = total + ind @ leaf[:, path]
    return total


def _cut(
    v: Float[Array, " n"],
    k: Int[Array, ""],
    r: Float[Array, " k2"],
    k_max: int,
    *,
    floor: float = 0.25,
    minority: Float[Array, ""] | float = 0.0,
    ordered: Bool[Array, ""] | bool = False,
) -> Int[Array, " n"]:
    """Cuts `v` into `k` bins at random quantiles (min share each), codes permuted.

    `r` holds 2 * k_max uniforms: bin widths (uniform + `floor`), then the label
    permutation. A `minority` share > 0 gives the lowest bin exactly that share of
    the rows; `ordered` keeps the codes in the order of `v` (no permutation).
    """
    slot = jnp.arange(k_max)
    w = jnp.where(slot < k, r[:k_max] + floor, 0.0)
    rest = w.sum() - w[0]
    w0 = minority / (1.0 - minority) * rest
    w = jnp.where((slot == 0) & (minority > 0.0), w0, w)
    q = jnp.cumsum(w / w.sum())[: k_max - 1]
    thr = jnp.quantile(v, jnp.clip(q, 0.0, 1.0))
    thr = jnp.where(slot[: k_max - 1] < k - 1, thr, jnp.inf)
    code = (v[:, None] > thr[None, :]).sum(axis=1).astype(jnp.int32)
    # random permutation of the first k codes (unused slots sort last)
    perm = jnp.argsort(jnp.where(slot < k, r[k_max:], 2.0))
    perm = jnp.where(ordered, slot, perm)
    return perm[code].astype(jnp.int32)


def _dataset(key: jax.Array, cfg: PriorConfig) -> PriorBatch:
    n, d, f, h = cfg.n_rows, cfg.n_nodes, cfg.max_features, cfg.hidden
    t, depth = cfg.n_trees, cfg.tree_depth
    m, n_leaf = 2**depth - 1, 2**depth
    r = _Draws(key, *_budget(cfg))
    # v2's draws come from their own key, so v1 settings reproduce v1's datasets
    r2 = _Draws(jax.random.fold_in(key, 1), *_budget_v2(cfg))

    # --- graph ---
    p_edge = r.u((), 0.1, cfg.max_edge_prob)
    in_degree = r2.u((), 1.0, max(cfg.max_parents, 1.0))
    if cfg.max_parents > 0.0:
        rows = jnp.maximum(jnp.arange(d, dtype=_F32), 1.0)
        p_edge = jnp.minimum(p_edge, in_degree / rows)[:, None]
    adj = jnp.tril(r.u((d, d)) < p_edge, k=-1)
    # the last node always has a parent, so a non-root target exists
    adj = adj.at[d - 1, r.int((), 0, d - 1)].set(True)
    n_par = adj.sum(axis=1)

    # --- per-node mechanism parameters, stacked over nodes ---
    fam_weights = -jnp.log(r.u((3,)) + 1e-7)  # Dirichlet(1, 1, 1) up to scale
    family = _pick(r.u((d,)), jnp.broadcast_to(fam_weights, (d, 3)))
    activation = r.int((d,), 0, 4)
    noise_family = r.int((d,), 0, 4)
    log_scale = r.u((), -3.0, -0.7)
    noise_scale = jnp.exp(log_scale + 0.5 * r.z((d,)))
    norm = jnp.sqrt(jnp.maximum(n_par, 1).astype(_F32))
    w_lin = r.z((d, d)) / norm[:, None]
    w1 = r.z((d, d, h)) * (1.5 / norm)[:, None, None]
    b1 = r.z((d, h))
    w2 = r.z((d, h)) / jnp.sqrt(jnp.asarray(h, _F32))
    # tree splits on the node's own parents, uniformly (roots never use the trees)
    par_weights = jnp.broadcast_to(adj.astype(_F32)[:, None, None, :], (d, t, m, d))
    feat = _pick(r.u((d, t, m)), par_weights + 1e-9)
    thr = r.z((d, t, m)) * 0.8
    leaf = r.z((d, t, n_leaf)) / jnp.sqrt(jnp.asarray(t, _F32))
    noise_u, noise_z = r.u((d, n)), r.z((d, n))

    def node_step(x: Float[Array, "n d"], i: Int[Array, ""]):
        mask = adj[i].astype(_F32)
        xp = x * mask[None, :]
        lin = xp @ w_lin[i]
        mlp = _activation(xp @ w1[i] + b1[i][None, :], activation[i]) @ w2[i]
        tree = _tree_sum(x, feat[i], thr[i], leaf[i], depth)
        signal = jnp.stack([lin, mlp, tree])[family[i]]
        eps = _noise(noise_family[i], noise_u[i], noise_z[i])
        v = jnp.where(n_par[i] > 0, signal + noise_scale[i] * eps, eps)
        v = (v - v.mean()) / (v.std() + 1e-6)
        return x.at[:, i].set(v), None

    x_all, _ = jax.lax.scan(node_step, jnp.zeros((n, d), _F32), jnp.arange(d))

    # --- target ---
    target = _pick(r.u(()), (n_par > 0).astype(_F32))
    k_multi = r.int((), 3, cfg.max_classes + 1)
    binary = r.u(()) < cfg.p_binary
    n_classes = jnp.where(binary | (cfg.max_classes == 2), 2, k_multi).astype(jnp.int32)
    imbalanced = r2.u(()) < cfg.p_imbalanced
    share = jnp.maximum(r2.u((), cfg.min_minority, cfg.max_minority), 2.0 / n)
    y = _cut(
        x_all[:, target],
        n_classes,
        r.u((2 * cfg.max_classes,)),
        cfg.max_classes,
        minority=jnp.where(imbalanced, share, 0.0),
    )

    # --- features: random other nodes, warped, some categorical, some missing ---
    # The target's parents and children come first (mostly), so that small feature
    # sets still carry signal; the chosen columns are then shuffled, so a column's
    # position says nothing about its relevance.
    neighbour = (adj[target, :] | adj[:, target]).astype(_F32)
    key_ = r.u((d,)) - 0.8 * neighbour
    order = jnp.argsort(jnp.where(jnp.arange(d) == target, 2.0, key_))
    if cfg.feature_dist == "log":
        lo, hi = math.log(cfg.min_features), math.log(f + 1)
        n_features = jnp.floor(jnp.exp(r.u((), lo, hi))).astype(jnp.int32)
        n_features = jnp.clip(n_features, cfg.min_features, f)
    else:
        n_features = r.int((), cfg.min_features, f + 1)
    active = jnp.arange(f) < n_features
    shuffle = jnp.argsort(jnp.where(active, r.u((f,)), 2.0 + jnp.arange(f, dtype=_F32)))
    xf = x_all[:, order[:f][shuffle]]
    warp = _pick(
        r.u((f,)), jnp.broadcast_to(jnp.array([0.55, 0.15, 0.15, 0.15], _F32), (f, 4))
    )
    warped = jnp.stack(
        [xf, jnp.exp(0.7 * xf), xf * jnp.abs(xf), jax.nn.sigmoid(2.0 * xf)]
    )
    xf = jnp.take_along_axis(warped, warp[None, None, :], axis=0)[0]
    p_cat = jnp.where(
        r.u(()) < cfg.p_categorical, r.u((), 0.0, cfg.max_categorical), 0.0
    )
    categorical = (r.u((f,)) < p_cat) & active
    n_cat = r.int((f,), 2, cfg.max_categories + 1)
    cut_r = r.u((f, 2 * cfg.max_categories))
    ordinal = r2.u((f,)) < cfg.p_ordinal
    codes = jax.vmap(
        lambda col, c, rr, o: _cut(
            col, c, rr, cfg.max_categories, floor=cfg.cat_min_width, ordered=o
        ),
        in_axes=(1, 0, 0, 0),
    )(xf, n_cat, cut_r, ordinal)
    xf = jnp.where(categorical[None, :], codes.T.astype(_F32), xf)
    xf = jnp.where(active[None, :], xf, 0.0)
    rate = jnp.where(r.u(()) < cfg.p_missing, r.u((), 0.0, cfg.max_missing), 0.0)
    missing = (r.u((n, f)) < rate) & active[None, :]
    xf = jnp.where(missing, jnp.nan, xf)
    r.done()
    r2.done()
    return PriorBatch(
        x=xf,
        y=y,
        missing=missing,
        categorical=categorical,
        n_features=n_features.astype(jnp.int32),
        n_classes=n_classes,
    )
