"""sample_dags: acyclic graphs following edge probabilities, honouring constraints."""

from __future__ import annotations

import jax
import networkx as nx
import numpy as np
import pytest

from jaxscm import sample_dags

D, K = 6, 2000  # one shape for most tests: one compilation


def _random_probs(rng: np.random.Generator, d: int) -> np.ndarray:
    """Edge probabilities with both directions of each pair summing to at most 1."""
    p = np.zeros((d, d), np.float32)
    for i in range(d):
        for j in range(i + 1, d):
            a, b = rng.dirichlet([1.0, 1.0, 1.0])[:2]
            p[i, j], p[j, i] = a, b
    return p


def test_sample_dags__always_acyclic_for_dense_conflicting_probs(key):
    p = _random_probs(np.random.default_rng(0), D)
    g = np.asarray(sample_dags(key, p, K))
    assert g.shape == (K, D, D)
    assert g.dtype == bool
    assert not np.diagonal(g, axis1=1, axis2=2).any()
    assert all(nx.is_directed_acyclic_graph(nx.DiGraph(a)) for a in g)
    assert len({a.tobytes() for a in g}) > K // 2  # the graphs vary


def test_sample_dags__frequencies_track_probs_when_consistent_with_an_order(key):
    # Probabilities consistent with the order 0 < 1 < 2 < 3 (plus weak reverse
    # directions): sampled edges rarely form cycles, so frequencies match P.
    p = np.zeros((D, D), np.float32)
    p[:4, :4] = [
        [0, 0.7, 0.3, 0.0],
        [0.1, 0, 0.5, 0.9],
        [0.0, 0.0, 0, 0.2],
        [0, 0.05, 0, 0],
    ]
    p[4, 5], p[5, 4] = 0.45, 0.45
    g = np.asarray(sample_dags(key, p, K)).mean(axis=0)
    # K = 2000 draws: a frequency's standard error is <= 0.012, so 0.05 is > 4 SE;
    # the only possible cycle (1->0->2->3->1) has probability 3e-4.
    np.testing.assert_allclose(g, p, atol=0.05)


def test_sample_dags__respects_required_and_forbidden(key):
    p = _random_probs(np.random.default_rng(1), D)
    required = np.zeros((D, D), bool)
    forbidden = np.zeros((D, D), bool)
    required[5, 0] = required[0, 3] = required[3, 1] = True
    forbidden[0, 1] = forbidden[2, 4] = forbidden[4, 2] = True
    g = np.asarray(sample_dags(key, p, K, required=required, forbidden=forbidden))
    assert g[:, required].all()
    assert not g[:, forbidden].any()
    assert all(nx.is_directed_acyclic_graph(nx.DiGraph(a)) for a in g)


def test_sample_dags__same_key_same_graphs_and_jit_equals_eager(key):
    p = _random_probs(np.random.default_rng(2), D)
    a = sample_dags(key, p, K)
    assert np.array_equal(a, sample_dags(key, p, K))
    assert not np.array_equal(a, sample_dags(jax.random.key(1), p, K))
    jitted = jax.jit(sample_dags, static_argnums=2)(key, p, K)
    assert np.array_equal(a, jitted)


def test_sample_dags__required_cycle_is_a_clear_error(key):
    required = np.zeros((3, 3), bool)
    required[0, 1] = required[1, 2] = required[2, 0] = True
    with pytest.raises(ValueError, match="'a' -> 'b' -> 'c' -> 'a'"):
        sample_dags(key, np.zeros((3, 3)), 2, required=required, nodes=["a", "b", "c"])


@pytest.mark.parametrize(
    ("probs", "match"),
    [
        (np.zeros((2, 3)), "square"),
        (np.array([[0, 0.7], [0.6, 0]]), "exclusive"),
        (np.array([[0, 1.5], [0, 0]]), r"\[0, 1\]"),
    ],
)
def test_sample_dags__bad_probabilities_raise(key, probs, match):
    with pytest.raises(ValueError, match=match):
        sample_dags(key, probs, 2)
