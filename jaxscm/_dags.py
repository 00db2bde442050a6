"""Sampling acyclic graphs from an edge-probability matrix, in pure JAX.

The sampler, per graph:

1. every unordered pair {i, j} draws one uniform u and takes state i -> j when
   u < P(i -> j), j -> i when P(i -> j) <= u < P(i -> j) + P(j -> i), no edge
   otherwise (required edges are always on, forbidden edges always off);
2. these edges may form cycles, so an order is built greedily: repeatedly place
   next, among the remaining nodes whose required parents are all placed, the one
   with the fewest sampled in-edges from the remaining nodes (a source whenever one
   exists), ties going to more out-edges, then to a random (Gumbel) pick;
3. the sampled edges that agree with the order are kept; those that would close a
   cycle are dropped.

So an edge's frequency equals P(i -> j) whenever the sampled edges are acyclic (e.g.
when `edge_probs` comes from one DAG or the pair states rarely conflict), and is
lower only by the rate at which it closes a cycle. Every output is acyclic, contains
every required edge and no forbidden one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from jaxscm._pytree import concrete


def sample_dags(
    key: jax.Array,
    edge_probs: Float[Array, "d d"],
    k: int,
    *,
    required: Any = None,
    forbidden: Any = None,
    nodes: Sequence[str] | None = None,
) -> Bool[Array, "k d d"]:
    """Draws k acyclic graphs whose edges follow `edge_probs` (sampler in module doc).

    Args:
      key: a PRNG key.
      edge_probs: (d, d), `[i, j]` = P(i -> j); the diagonal is ignored and
        P(i -> j) + P(j -> i) must not exceed 1.
      k: number of graphs (static).
      required: (d, d) bool, edges every graph must contain; they must be acyclic.
      forbidden: (d, d) bool, edges no graph may contain.
      nodes: node names, only for error messages.

    Returns:
      (k, d, d) bool adjacency, `[b, i, j]` true for an edge i -> j in graph b.

    Raises:
      ValueError: a non-square or out-of-range `edge_probs`, a pair whose two
        directions sum past 1, an edge both required and forbidden, or required edges
        that form a cycle (the message lists it).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> p = jnp.array([[0.0, 0.9], [0.1, 0.0]])
      >>> sample_dags(jax.random.key(0), p, 3).shape
      (3, 2, 2)
    """
    probs = jnp.asarray(edge_probs)
    if not jnp.issubdtype(probs.dtype, jnp.floating):
        probs = probs.astype(jnp.float32)
    if probs.ndim != 2 or probs.shape[0] != probs.shape[1]:
        raise ValueError(
            f"edge_probs must be a square (d, d) matrix, got shape {probs.shape}"
        )
    d = probs.shape[0]
    name = (lambda i: repr(nodes[i])) if nodes is not None else (lambda i: f"node {i}")
    req = jnp.zeros((d, d), bool) if required is None else jnp.asarray(required, bool)
    forb = (
        jnp.zeros((d, d), bool) if forbidden is None else jnp.asarray(forbidden, bool)
    )
    if req.shape != (d, d) or forb.shape != (d, d):
        raise ValueError(f"required/forbidden must be ({d}, {d}) like edge_probs")
    if concrete(probs, req, forb):
        _check(np.asarray(probs, np.float64), np.asarray(req), np.asarray(forb), name)
    return _many(jax.random.split(key, k), probs, req, forb)


def _check(p: np.ndarray, req: np.ndarray, forb: np.ndarray, name: Any) -> None:
    d = p.shape[0]
    off = ~np.eye(d, dtype=bool)
    if not np.isfinite(p).all() or (p[off] < 0).any() or (p[off] > 1).any():
        raise ValueError("edge_probs must hold probabilities in [0, 1]")
    both = p + p.T
    if (both[off] > 1 + 1e-6).any():
        i, j = np.argwhere((both > 1 + 1e-6) & off)[0]
        raise ValueError(
            f"P({name(i)} -> {name(j)}) + P({name(j)} -> {name(i)}) = "
            f"{both[i, j]:.3f} > 1; "
            f"the two directions of a pair are exclusive events"
        )
    if np.diagonal(req).any():
        i = int(np.argmax(np.diagonal(req)))
        raise ValueError(f"required self-loop on {name(i)}")
    clash = req & forb
    if clash.any():
        i, j = np.argwhere(clash)[0]
        raise ValueError(f"edge {name(i)} -> {name(j)} is both required and forbidden")
    cycle = _find_cycle(req)
    if cycle:
        path = " -> ".join(name(i) for i in [*cycle, cycle[0]])
        raise ValueError(f"the required edges form a cycle: {path}; drop one of them")


def _find_cycle(adj: np.ndarray) -> list[int]:
    """A directed cycle in `adj` as a node list, or [] (iterative DFS)."""
    d = adj.shape[0]
    state = np.zeros(d, np.int8)  # 0 new, 1 on stack, 2 done
    for start in range(d):
        if state[start]:
            continue
        stack = [(start, iter(np.flatnonzero(adj[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                state[node] = 2
            elif state[child] == 1:
                return path[path.index(int(child)) :]
            elif state[child] == 0:
                state[child] = 1
                path.append(int(child))
                stack.append((int(child), iter(np.flatnonzero(adj[child]))))
    return []


def _one(key: jax.Array, p: jax.Array, req: jax.Array, forb: jax.Array) -> jax.Array:
    d = p.shape[0]
    k_pair, k_tie = jax.random.split(key)
    u = jax.random.uniform(k_pair, (d, d), p.dtype)
    u = jnp.triu(u, 1) + jnp.triu(u, 1).T  # one draw per unordered pair
    off = ~jnp.eye(d, dtype=bool)
    fwd = u < p
    bwd = (u >= p.T) & (u < p.T + p)  # for [i, j]: pair's other direction came first
    # For a pair a < b: a -> b iff u < P(a->b), b -> a iff u in [P(a->b), P(a->b) +
    # P(b->a)). Above the diagonal [i, j] is a -> b (fwd); below it is b -> a (bwd).
    lower = jnp.tril(jnp.ones((d, d), bool), -1)
    edges = jnp.where(lower, bwd, fwd) & off
    edges = (edges | req) & ~forb
    tie = 1e-3 / d * jax.random.gumbel(k_tie, (d,), p.dtype)

    def place(
        t: int, carry: tuple[jax.Array, jax.Array]
    ) -> tuple[jax.Array, jax.Array]:
        placed, pos = carry
        rem = ~placed
        e_rem = edges & rem[:, None] & rem[None, :]
        # In-degree first, so a source is always taken while one exists (an acyclic
        # draw keeps every edge); then more out-edges; then a random tie-break.
        indeg, outdeg = e_rem.sum(0).astype(p.dtype), e_rem.sum(1).astype(p.dtype)
        score = indeg - outdeg / (2.0 * d) + tie
        blocked = (req & rem[:, None]).any(0)  # a required parent is still unplaced
        score = jnp.where(rem & ~blocked, score, jnp.inf)
        nxt = jnp.argmin(score)
        return placed.at[nxt].set(True), pos.at[nxt].set(t)

    _, pos = jax.lax.fori_loop(
        0, d, place, (jnp.zeros((d,), bool), jnp.zeros((d,), jnp.int32))
    )
    return edges & (pos[:, None] < pos[None, :])


# Compiled once per (k, d): eager vmap would dispatch the loop op by op.
_many = jax.jit(jax.vmap(_one, in_axes=(0, None, None, None)))
