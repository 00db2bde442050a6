"""Random SCMs for tests, benchmarks and as building blocks of priors."""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from jaxscm._linear import Linear
from jaxscm._mechanisms import Additive, Classifier, Root
from jaxscm._mlp import MLP
from jaxscm._noise import Empirical, Parametric
from jaxscm._schema import Column
from jaxscm._scm import SCM
from jaxscm._tree import TreeEnsemble

MechanismFamily = Literal["linear", "mlp", "tree", "mixed"]
NoiseFamily = Literal["gaussian", "empirical", "mixed"]


def random_scm(
    key: jax.Array,
    n_nodes: int,
    *,
    edge_prob: float = 0.3,
    max_parents: int | None = None,
    mechanism: MechanismFamily = "linear",
    noise: NoiseFamily = "gaussian",
    n_categorical: int = 0,
    n_classes: int = 3,
    target: bool = False,
    n_trees: int = 4,
    tree_depth: int = 3,
    hidden: int = 16,
    dtype: jnp.dtype = jnp.float32,
) -> SCM:
    """Draws a random SCM: a random DAG and random mechanisms.

    The DAG is a strictly lower-triangular Bernoulli(`edge_prob`) adjacency (so node
    order is topological), with at most `max_parents` parents per node. Root nodes get
    noise only; others an additive-noise model whose predictor is linear, a tanh MLP,
    a boosted ensemble of complete random trees, or (for "mixed") one of those in turn.
    Weights are scaled by 1/sqrt(#parents) so variances stay moderate with depth.

    Args:
      key: PRNG key; everything random derives from it.
      n_nodes: number of nodes d >= 1.
      edge_prob: probability of each forward edge.
      max_parents: cap on parents per node (None: no cap).
      mechanism: "linear", "mlp", "tree" or "mixed".
      noise: "gaussian", "empirical" (resampled skewed draws) or "mixed".
      n_categorical: how many non-target nodes (chosen at random) are categorical,
        sampled by softmax classifiers on their parents (or uniformly if roots).
      n_classes: categories of each categorical node.
      target: make the last node a categorical target (`Column.is_target`).
      n_trees, tree_depth: size of tree ensembles.
      hidden: hidden width of MLPs.
      dtype: float dtype of all parameters.

    Returns:
      An `SCM` with nodes "x0", "x1", ... (the target, if any, is "y").

    Examples:
      >>> import jax
      >>> scm = random_scm(jax.random.key(0), 10, mechanism="mixed", target=True)
      >>> scm.nodes[-1], scm.columns[-1].is_target
      ('y', True)
    """
    if n_nodes < 1:
        raise ValueError(f"n_nodes must be >= 1, got {n_nodes}")
    if not 0.0 <= edge_prob <= 1.0:
        raise ValueError(f"edge_prob must be in [0, 1], got {edge_prob}")
    if mechanism not in ("linear", "mlp", "tree", "mixed"):
        raise ValueError(f"unknown mechanism family {mechanism!r}")
    if noise not in ("gaussian", "empirical", "mixed"):
        raise ValueError(f"unknown noise family {noise!r}")
    n_free = n_nodes - int(target)
    if not 0 <= n_categorical <= n_free:
        raise ValueError(f"n_categorical must be in [0, {n_free}], got {n_categorical}")
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")

    # Structure is static Python data, so draw it on the host from the key's bits.
    k_graph, k_cat, k_params = jax.random.split(key, 3)
    rng = np.random.default_rng(np.asarray(jax.random.key_data(k_graph)).ravel())
    adj = np.tril(rng.random((n_nodes, n_nodes)) < edge_prob, k=-1)  # adj[i, j]: j -> i
    parents: list[tuple[int, ...]] = []
    for i in range(n_nodes):
        pa = np.flatnonzero(adj[i])
        if max_parents is not None and len(pa) > max_parents:
            pa = np.sort(rng.choice(pa, size=max_parents, replace=False))
        parents.append(tuple(int(j) for j in pa))
    cat_rng = np.random.default_rng(np.asarray(jax.random.key_data(k_cat)).ravel())
    categorical = set(
        cat_rng.choice(n_free, size=n_categorical, replace=False).tolist()
    )
    if target:
        categorical.add(n_nodes - 1)
        # a target without parents carries no signal; give it up to 3 earlier nodes
        if not parents[-1] and n_nodes > 1:
            k = min(3, n_nodes - 1)
            parents[-1] = tuple(
                sorted(rng.choice(n_nodes - 1, size=k, replace=False).tolist())
            )

    families = ("linear", "mlp", "tree")
    columns: list[Column] = []
    mechanisms = []
    for i in range(n_nodes):
        ki = jax.random.fold_in(k_params, i)
        k_f, k_n = jax.random.split(ki)
        is_target = target and i == n_nodes - 1
        name = "y" if is_target else f"x{i}"
        p = len(parents[i])
        if i in categorical:
            labels = tuple(f"c{c}" for c in range(n_classes))
            columns.append(Column(name, "categorical", labels, is_target=is_target))
            coef = jax.random.normal(k_f, (p, n_classes), dtype) * (
                2.0 / max(p, 1) ** 0.5
            )
            bias = jax.random.normal(k_n, (n_classes,), dtype) * 0.5
            mechanisms.append(Classifier(Linear(coef, bias, output="softmax")))
            continue
        columns.append(Column(name))
        fam = families[i % 3] if mechanism == "mixed" else mechanism
        noise_fam = ("gaussian", "empirical")[i % 2] if noise == "mixed" else noise
        eps = _noise(k_n, noise_fam, dtype)
        if p == 0:
            mechanisms.append(Root(eps))
        elif fam == "linear":
            mechanisms.append(Additive(_linear(k_f, p, dtype), eps))
        elif fam == "mlp":
            mechanisms.append(Additive(_mlp(k_f, p, hidden, dtype), eps))
        else:
            mechanisms.append(Additive(_trees(k_f, p, n_trees, tree_depth, dtype), eps))
    return SCM(
        mechanisms=tuple(mechanisms), columns=tuple(columns), parents=tuple(parents)
    )


def _noise(key: jax.Array, family: str, dtype: jnp.dtype):
    k_scale, k_vals = jax.random.split(key)
    scale = jax.random.uniform(k_scale, (), dtype, 0.3, 1.0)
    if family == "gaussian":
        return Parametric(
            shapes=(), loc=jnp.zeros((), dtype), scale=scale, family="norm"
        )
    # skewed, heavy-ish tailed residuals, as fitted empirical noise tends to be
    z = jax.random.normal(k_vals, (256,), dtype)
    return Empirical(values=scale * (jnp.exp(0.5 * z) - jnp.exp(0.125).astype(dtype)))


def _linear(key: jax.Array, p: int, dtype: jnp.dtype) -> Linear:
    k_w, k_b = jax.random.split(key)
    coef = jax.random.normal(k_w, (p,), dtype) / jnp.sqrt(jnp.asarray(p, dtype))
    return Linear(coef=coef, intercept=jax.random.normal(k_b, (), dtype) * 0.5)


def _mlp(key: jax.Array, p: int, hidden: int, dtype: jnp.dtype) -> MLP:
    k1, k2, k3 = jax.random.split(key, 3)
    w1 = jax.random.normal(k1, (p, hidden), dtype) / jnp.sqrt(jnp.asarray(p, dtype))
    b1 = jax.random.normal(k2, (hidden,), dtype) * 0.5
    w2 = jax.random.normal(k3, (hidden, 1), dtype) / jnp.sqrt(
        jnp.asarray(hidden, dtype)
    )
    return MLP(weights=(w1, w2), biases=(b1, jnp.zeros((1,), dtype)), activation="tanh")


def _trees(
    key: jax.Array, p: int, n_trees: int, depth: int, dtype: jnp.dtype
) -> TreeEnsemble:
    # Complete binary trees: internal nodes 0..2^depth-2 with children 2i+1, 2i+2;
    # leaves point to themselves.
    m = 2 ** (depth + 1) - 1
    n_internal = 2**depth - 1
    idx = np.arange(m)
    internal = idx < n_internal
    left = np.where(internal, 2 * idx + 1, idx).astype(np.int32)
    right = np.where(internal, 2 * idx + 2, idx).astype(np.int32)
    k_f, k_t, k_v = jax.random.split(key, 3)
    feature = jax.random.randint(k_f, (n_trees, m), 0, p, dtype=jnp.int32)
    threshold = jax.random.normal(k_t, (n_trees, m), dtype) * 0.7
    value = jax.random.normal(k_v, (n_trees, m, 1), dtype) / jnp.sqrt(
        jnp.asarray(n_trees, dtype)
    )
    return TreeEnsemble(
        feature=feature,
        threshold=threshold,
        left=jnp.broadcast_to(jnp.asarray(left), (n_trees, m)),
        right=jnp.broadcast_to(jnp.asarray(right), (n_trees, m)),
        missing_left=jnp.ones((n_trees, m), bool),
        value=value,
        base=jnp.zeros((1,), dtype),
        depth=depth,
        aggregation="sum",
        n_features=p,
    )
