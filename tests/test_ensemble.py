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


def test_plan__one_body_per_kind_and_the_same_rows_traced_or_not():
    from jaxscm._ensemble import plan, plan_propagate

    # Eight members from two random-SCM seeds: positions repeat kinds, so the plan
    # holds fewer kinds than the ensemble holds groups.
    members = [
        random_scm(jax.random.key(i % 2), 6, mechanism="mixed", edge_prob=0.5)
        for i in range(8)
    ]
    ens = stack(members)
    p = plan(ens)
    assert plan(ens) is p  # built once, on the host
    n_groups = sum(len(g) for g in ens.groups)
    assert len(p.kinds) < n_groups
    assert sorted(t for pairs in p.layout.pairs for t, _ in pairs) == sorted(
        t for t, gs in enumerate(ens.groups) for _ in gs
    )
    noise = jaxscm.sample_noise(jax.random.key(3), ens, 40)
    text = jax.jit(plan_propagate).lower(p, noise).as_text()
    assert text.count("stablehlo.case") == len(p.kinds)
    # A plain call (host plan) and a call inside the user's jit (plan built in the
    # trace) give the same bits; vmap over keys batches the dot products (float
    # rounding only).
    key = jax.random.key(4)
    plain = np.asarray(jaxscm.sample(key, ens, 40))
    traced = jax.jit(jaxscm.sample, static_argnums=2)(key, ens, 40)
    np.testing.assert_array_equal(plain, np.asarray(traced))
    keys = jax.random.split(key, 2)
    both = jax.vmap(jaxscm.sample, in_axes=(0, None, None))(keys, ens, 40)
    np.testing.assert_allclose(
        np.asarray(both[1]), np.asarray(jaxscm.sample(keys[1], ens, 40)), rtol=1e-5
    )


def test_plan__noise_is_each_members_own_draw():
    members = _members()
    ens = stack(members)
    key = jax.random.key(8)
    noise = np.asarray(jaxscm.sample_noise(key, ens, 50))
    for b, scm in enumerate(members):
        kb = jax.random.fold_in(key, b)
        for mech, col in zip(scm.mechanisms, scm.columns, strict=True):
            c = ens.nodes.index(col.name)
            # compiled like the ensemble's draw (eager would round loc + scale * z
            # in two steps where XLA fuses them)
            draw = jax.jit(type(mech).sample_noise, static_argnums=2)
            want = draw(mech, jax.random.fold_in(kb, c), 50)
            np.testing.assert_array_equal(noise[b, :, c], np.asarray(want))
