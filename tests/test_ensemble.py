"""DAG ensembles: one vmapped sampler that matches each member exactly."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscm
from jaxscm import Column, random_scm, stack


def _members():
    # same five columns, different DAGs and families; x3 categorical in every member
    out = []
    for i, fam in enumerate(["linear", "mlp", "tree", "mixed"]):
        scm = random_scm(
            jax.random.key(i), 5, mechanism=fam, noise="mixed", edge_prob=0.5
        )
        out.append(scm)
    return out


def _member_view(ens, scm, x):
    return x[:, [ens.nodes.index(name) for name in scm.nodes]]


def test_stack__each_member_equals_its_own_static_model():
    members = _members()
    ens = stack(members)
    noise = jaxscm.sample_noise(jax.random.key(9), ens, 300)
    x = jaxscm.propagate(ens, noise)
    assert x.shape == (4, 300, 5)
    for b, scm in enumerate(members):
        want = jaxscm.propagate(scm, _member_view(ens, scm, noise[b]))
        np.testing.assert_allclose(
            np.asarray(_member_view(ens, scm, x[b])),
            np.asarray(want),
            rtol=1e-6,
            atol=1e-6,
        )


def test_stack__sample_is_jit_stable_and_key_dependent():
    ens = stack(_members())
    f = jax.jit(jaxscm.sample, static_argnums=2)
    a, b = f(jax.random.key(1), ens, 64), f(jax.random.key(1), ens, 64)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(f(jax.random.key(2), ens, 64)))
    assert bool(jnp.isfinite(a).all())


def test_stack__categorical_columns_and_canonical_order():
    members = [
        random_scm(jax.random.key(i), 4, n_categorical=0, target=True, n_classes=3)
        for i in range(3)
    ]
    order = tuple(reversed(members[0].columns))
    ens = stack(members, columns=order)
    assert ens.nodes == tuple(c.name for c in order)
    x = np.asarray(jaxscm.sample(jax.random.key(0), ens, 500))
    y = x[:, :, ens.target]
    assert set(np.unique(y)) <= {0.0, 1.0, 2.0}
    assert ens.adjacency.shape == (3, 4, 4)


def test_stack__mismatched_columns_are_refused():
    a = random_scm(jax.random.key(0), 3)
    b = random_scm(jax.random.key(1), 4)
    with pytest.raises(
        ValueError,
        match=r"member 1 has different columns: missing \[\], unexpected \['x3'\]",
    ):
        stack([a, b])
    c = random_scm(jax.random.key(2), 3, n_categorical=1)
    with pytest.raises(ValueError, match="member 1, column"):
        stack([a, c], columns=a.columns)
    with pytest.raises(ValueError, match="at least one SCM"):
        stack([])


def test_stack__canonical_column_type_is_preserved():
    ens = stack(_members())
    assert all(isinstance(c, Column) for c in ens.columns)
    assert ens.n_members == 4
    assert ens.n_nodes == 5


def test_ensemble__fit_record_is_carried_but_not_structure():
    from jaxscm import _sample as sample_module

    ens = stack(_members())
    a, b = ens.with_info("fit A"), ens.with_info("fit B")
    assert jax.tree.structure(a) == jax.tree.structure(b)
    combined = jax.tree.map(lambda u, v: u + v, a, b)
    assert combined.info == "fit A"
    assert jax.device_put(b).info == "fit B"
    x = jaxscm.sample(jax.random.key(4), a, 16)
    size = sample_module._sample_jit._cache_size()
    y = jaxscm.sample(jax.random.key(4), b, 16)
    assert sample_module._sample_jit._cache_size() == size  # no recompilation
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert a.info == "fit A"
    assert b.info == "fit B"
