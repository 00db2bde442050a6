"""`do` on an ensemble: every member intervened, the same as intervening each member."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import jaxscm
from jaxscm import Column, do, random_scm, stack


def _members():
    # same five columns (the target y categorical), different DAGs and families
    return [
        random_scm(
            jax.random.key(i),
            5,
            mechanism=fam,
            noise="mixed",
            edge_prob=0.6,
            target=True,
            n_classes=3,
        )
        for i, fam in enumerate(["linear", "mlp", "tree", "mixed"])
    ]


def _view(ens, scm, x):
    return x[:, [ens.nodes.index(name) for name in scm.nodes]]


def _descendants(scm, name):
    i = scm.index(name)
    out: set[int] = set()
    for j in range(i + 1, scm.n_nodes):
        if any(p == i or p in out for p in scm.parents[j]):
            out.add(j)
    return {scm.nodes[j] for j in out}


@pytest.mark.parametrize("held", [{"x1": 2.5}, {"x0": -1.0, "y": 1}, {"x3": 0.25}])
def test_do__ensemble_member_equals_the_intervened_member(held):
    members = _members()
    ens = do(stack(members), held)
    noise = jaxscm.sample_noise(jax.random.key(3), ens, 200)
    x = np.asarray(jaxscm.propagate(ens, noise))
    for b, scm in enumerate(members):
        want = jaxscm.propagate(do(scm, held), _view(ens, scm, noise[b]))
        np.testing.assert_allclose(
            _view(ens, scm, x[b]), np.asarray(want), rtol=1e-6, atol=1e-6
        )
    for name, value in held.items():
        np.testing.assert_array_equal(x[:, :, ens.nodes.index(name)], float(value))


def test_do__ensemble_non_descendants_are_the_same_draws():
    members = _members()
    ens = stack(members)
    key = jax.random.key(5)
    x = np.asarray(jaxscm.sample(key, ens, 300))
    xi = np.asarray(jaxscm.sample(key, do(ens, {"x2": 0.5}), 300))
    for b, scm in enumerate(members):
        keep = [
            ens.nodes.index(n)
            for n in scm.nodes
            if n != "x2" and n not in _descendants(scm, "x2")
        ]
        np.testing.assert_array_equal(xi[b][:, keep], x[b][:, keep])
    # the intervened column is cut from its parents in every member's graph
    assert (
        np.asarray(do(ens, {"x2": 0.5}).adjacency)[:, :, ens.nodes.index("x2")].sum()
        == 0
    )
    assert not np.array_equal(xi, x)


def test_do__ensemble_new_values_reuse_the_structure():
    ens = stack(_members())
    a, b = do(ens, {"x1": 1.0}), do(ens, {"x1": -4.0})
    assert jax.tree.structure(a) == jax.tree.structure(b)
    twice = do(a, {"x1": 3.0})  # the position's Constant group is reused
    assert jax.tree.structure(twice) == jax.tree.structure(a)
    x = np.asarray(jaxscm.sample(jax.random.key(0), twice, 8))
    np.testing.assert_array_equal(x[:, :, twice.nodes.index("x1")], 3.0)
    assert do(ens, {}) is ens


def test_do__ensemble_categorical_label_code_and_errors():
    ens = stack(_members())
    cat = next(c for c in ens.columns if c.kind == "categorical")
    j = ens.nodes.index(cat.name)
    key = jax.random.key(1)
    by_label = jaxscm.sample(key, do(ens, {cat.name: cat.categories[1]}), 4)
    by_code = jaxscm.sample(key, do(ens, {cat.name: 1}), 4)
    np.testing.assert_array_equal(np.asarray(by_label), np.asarray(by_code))
    assert np.asarray(by_code)[:, :, j].tolist() == [[1.0] * 4] * 4
    with pytest.raises(ValueError, match=f"node {cat.name!r}: unknown category 'zz'"):
        do(ens, {cat.name: "zz"})
    with pytest.raises(ValueError, match="a code in"):
        do(ens, {cat.name: len(cat.categories)})
    with pytest.raises(KeyError, match="no node named 'nope'"):
        do(ens, {"nope": 1.0})
    with pytest.raises(ValueError, match="must be finite"):
        do(ens, {"x0": float("nan")})
    with pytest.raises(ValueError, match="give a number"):
        do(ens, {"x0": "high"})


def test_node_value__integer_columns_take_whole_numbers():
    col = Column("count", "integer")
    assert jaxscm._do.node_value(col, 3) == 3.0
    with pytest.raises(ValueError, match="'count' holds whole numbers"):
        jaxscm._do.node_value(col, 2.5)


def test_do__plain_calls_compile_once_per_intervened_structure():
    from jaxscm import _sample as sample_module

    ens = stack(_members())
    compiled = sample_module._sample_jit
    jaxscm.sample(jax.random.key(0), do(ens, {"x1": 1.0}), 8)
    size = compiled._cache_size()
    rows = [
        np.asarray(jaxscm.sample(jax.random.key(i), do(ens, {"x1": v}), 8))
        for i, v in enumerate([-4.0, 2.5, 0.0])
    ]
    assert compiled._cache_size() == size  # new values, new keys: no recompilation
    for x, v in zip(rows, [-4.0, 2.5, 0.0], strict=True):
        np.testing.assert_array_equal(x[:, :, ens.nodes.index("x1")], v)
