"""Properties of `jaxscm.sample`, `do` and `propagate` over random DAGs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import jaxscm
from jaxscm import (
    SCM,
    Additive,
    Classifier,
    Column,
    Linear,
    Root,
    do,
    gaussian,
    random_scm,
    sample,
)

sample_jit = jax.jit(sample, static_argnums=2)


@st.composite
def scms(draw, max_nodes: int = 7):
    d = draw(st.integers(1, max_nodes))
    return random_scm(
        jax.random.key(draw(st.integers(0, 2**31 - 1))),
        d,
        edge_prob=draw(st.sampled_from([0.0, 0.3, 0.7, 1.0])),
        mechanism=draw(st.sampled_from(["linear", "mlp", "tree", "mixed"])),
        noise=draw(st.sampled_from(["gaussian", "empirical", "mixed"])),
        n_categorical=draw(st.integers(0, min(2, d))),
        n_classes=draw(st.integers(2, 4)),
    )


@given(scm=scms(), n=st.integers(1, 64))
def test_sample__shape_dtype_finite(scm, n):
    x = sample_jit(jax.random.key(1), scm, n)
    assert x.shape == (n, scm.n_nodes)
    assert x.dtype == jnp.float32
    assert bool(jnp.isfinite(x).all())
    for i, col in enumerate(scm.columns):
        if col.kind == "categorical":
            codes = np.asarray(x[:, i])
            assert set(np.unique(codes)) <= set(range(col.n_categories))


@given(scm=scms())
def test_sample__same_key_is_bitwise_identical(scm):
    a = sample_jit(jax.random.key(7), scm, 32)
    b = sample_jit(jax.random.key(7), scm, 32)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@given(scm=scms())
def test_sample__different_keys_differ(scm):
    a = sample_jit(jax.random.key(1), scm, 64)
    b = sample_jit(jax.random.key(2), scm, 64)
    # a categorical-only model with 2 classes could coincide by chance only with
    # probability 2^-64 per column
    assert not np.array_equal(np.asarray(a), np.asarray(b))


@given(scm=scms())
def test_sample__jit_equals_eager(scm):
    eager = sample(jax.random.key(3), scm, 16)
    jitted = sample_jit(jax.random.key(3), scm, 16)
    np.testing.assert_allclose(
        np.asarray(jitted), np.asarray(eager), rtol=1e-5, atol=1e-5
    )


@given(scm=scms(max_nodes=5))
def test_sample__vmap_over_keys_equals_loop(scm):
    keys = jax.random.split(jax.random.key(4), 3)
    batched = jax.jit(jax.vmap(sample, in_axes=(0, None, None)), static_argnums=2)(
        keys, scm, 8
    )
    looped = jnp.stack([sample_jit(k, scm, 8) for k in keys])
    assert batched.shape == (3, 8, scm.n_nodes)
    np.testing.assert_allclose(
        np.asarray(batched), np.asarray(looped), rtol=1e-5, atol=1e-5
    )


def test_sample__vmap_over_stacked_models_equals_loop():
    # same structure, different parameters: stack the leaves and vmap with in_axes 0
    base = random_scm(jax.random.key(0), 5, mechanism="mlp", edge_prob=0.6)
    models = [
        jax.tree.map(
            lambda x, i=i: x * (1.0 + 0.1 * i) if x.dtype == jnp.float32 else x, base
        )
        for i in range(3)
    ]
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *models)
    keys = jax.random.split(jax.random.key(1), 3)
    batched = jax.vmap(sample, in_axes=(0, 0, None))(keys, stacked, 10)
    for i, m in enumerate(models):
        np.testing.assert_allclose(
            np.asarray(batched[i]),
            np.asarray(sample(keys[i], m, 10)),
            rtol=1e-5,
            atol=1e-6,
        )


def _descendants(scm: SCM, i: int) -> set[int]:
    out: set[int] = set()
    for j in range(i + 1, scm.n_nodes):
        if any(p == i or p in out for p in scm.parents[j]):
            out.add(j)
    return out


@given(scm=scms(), data=st.data())
def test_do__makes_column_constant_and_leaves_non_descendants_unchanged(scm, data):
    i = data.draw(st.integers(0, scm.n_nodes - 1))
    col = scm.columns[i]
    value = 1.0 if col.kind == "categorical" else 2.5
    intervened = do(scm, {col.name: value})
    key = jax.random.key(11)
    x = np.asarray(sample_jit(key, scm, 200))
    xi = np.asarray(sample_jit(key, intervened, 200))
    np.testing.assert_array_equal(xi[:, i], np.full(200, value, np.float32))
    desc = _descendants(scm, i)
    keep = [j for j in range(scm.n_nodes) if j != i and j not in desc]
    # Noise is drawn per node from fold_in(key, node), so non-descendants are not just
    # equal in distribution: they are the very same draws.
    np.testing.assert_array_equal(xi[:, keep], x[:, keep])


def test_do__changes_a_linear_child_by_its_coefficient(key):
    scm = SCM(
        mechanisms=(
            Root(gaussian()),
            Additive(Linear(jnp.array([3.0]), jnp.array(1.0)), gaussian(0.5)),
        ),
        columns=(Column("x"), Column("y")),
        parents=((), (0,)),
    )
    x = sample(key, do(scm, {"x": 2.0}), 20000)
    mean = float(x[:, 1].mean())
    assert abs(mean - 7.0) < 4 * 0.5 / np.sqrt(20000)


def test_do__categorical_label_and_errors():
    scm = random_scm(jax.random.key(0), 4, n_categorical=1, n_classes=3, target=True)
    cat = next(c for c in scm.columns if c.kind == "categorical")
    x = sample(jax.random.key(1), do(scm, {cat.name: "c2"}), 5)
    assert np.asarray(x[:, scm.index(cat.name)]).tolist() == [2.0] * 5
    with pytest.raises(ValueError, match="unknown category 'nope'"):
        do(scm, {cat.name: "nope"})
    with pytest.raises(KeyError, match="no node named 'zz'"):
        do(scm, {"zz": 1.0})


@given(scm=scms(max_nodes=6), data=st.data())
def test_sample__appending_a_sink_leaves_earlier_columns_unchanged(scm, data):
    d = scm.n_nodes
    pa = tuple(sorted(data.draw(st.sets(st.integers(0, d - 1), max_size=d))))
    sink = Additive(
        Linear(jnp.ones((len(pa),), jnp.float32), jnp.array(0.0, jnp.float32)),
        gaussian(),
    )
    bigger = SCM(
        mechanisms=(*scm.mechanisms, sink),
        columns=(*scm.columns, Column("sink")),
        parents=(*scm.parents, pa),
    )
    key = jax.random.key(5)
    np.testing.assert_array_equal(
        np.asarray(sample_jit(key, bigger, 40))[:, :d],
        np.asarray(sample_jit(key, scm, 40)),
    )


def test_propagate__equals_sample_with_the_same_noise(key):
    scm = random_scm(
        jax.random.key(3), 6, mechanism="mixed", noise="mixed", n_categorical=1
    )
    noise = jaxscm.sample_noise(key, scm, 50)
    np.testing.assert_array_equal(
        np.asarray(jaxscm.propagate(scm, noise)), np.asarray(sample(key, scm, 50))
    )


def test_sample__accepts_other_prng_implementations():
    scm = random_scm(jax.random.key(0), 5)
    for impl in ("threefry2x32", "rbg", "unsafe_rbg"):
        k = jax.random.key(1, impl=impl)
        x = sample_jit(k, scm, 100)
        assert x.shape == (100, 5)
        assert bool(jnp.isfinite(x).all())


def test_classifier__reproduces_class_frequencies():
    probs = np.array([0.2, 0.3, 0.5], np.float32)
    scm = SCM(
        mechanisms=(
            Classifier(
                Linear(jnp.zeros((0, 3)), jnp.log(jnp.asarray(probs)), output="softmax")
            ),
        ),
        columns=(Column("c", "categorical", ("a", "b", "c")),),
        parents=((),),
    )
    n = 100_000
    x = np.asarray(sample(jax.random.key(0), scm, n))[:, 0]
    freq = np.bincount(x.astype(int), minlength=3) / n
    # 5 standard errors: a false failure has probability < 1e-6 per class
    tol = 5 * np.sqrt(probs * (1 - probs) / n)
    assert np.all(np.abs(freq - probs) < tol), (freq, probs, tol)


def test_classifier__inverse_cdf_matches_dowhy_rule():
    # DoWhy's ClassifierFCM: first class whose cumulative probability reaches u
    m = Classifier(Linear(jnp.zeros((1, 2)), jnp.array([0.0, 0.0]), output="softmax"))
    u = jnp.array([0.0, 0.25, 0.5, 0.5000001, 0.99])
    assert m.apply(jnp.zeros((5, 1)), u).tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]


def test_sample__plain_call_compiles_once_per_structure():
    from jaxscm import _sample as sample_module

    scm = random_scm(jax.random.key(11), 6, mechanism="mixed", noise="mixed")
    compiled = sample_module._sample_jit
    first = sample(jax.random.key(0), scm, 37)
    before = compiled._cache_size()
    # other keys, other parameter values and `do` values: the same structure
    sample(jax.random.key(1), scm, 37)
    sample(jax.random.key(0), jax.tree.map(jnp.copy, scm), 37)
    a = sample(jax.random.key(0), do(scm, {"x2": 1.0}), 37)
    b = sample(jax.random.key(0), do(scm, {"x2": -3.0}), 37)
    assert compiled._cache_size() == before + 1  # only the `do` structure is new
    assert np.asarray(a)[:, 2].tolist() == [1.0] * 37
    assert np.asarray(b)[:, 2].tolist() == [-3.0] * 37
    np.testing.assert_array_equal(
        np.asarray(first), np.asarray(sample_jit(jax.random.key(0), scm, 37))
    )


def test_sample__plain_call_traces_inside_jit_and_vmap():
    scm = random_scm(jax.random.key(12), 5, mechanism="mixed")
    keys = jax.random.split(jax.random.key(3), 3)
    batched = jax.jit(jax.vmap(sample, in_axes=(0, None, None)), static_argnums=2)(
        keys, scm, 9
    )
    looped = jnp.stack([sample(k, scm, 9) for k in keys])
    # batching an MLP's matrix products may change float summation order
    np.testing.assert_allclose(
        np.asarray(batched), np.asarray(looped), rtol=1e-6, atol=1e-6
    )
    noise = jaxscm.sample_noise(keys[0], scm, 9)
    np.testing.assert_array_equal(
        np.asarray(jaxscm.propagate(scm, noise)), np.asarray(sample(keys[0], scm, 9))
    )


def _rows_sha(x) -> str:
    import hashlib

    return hashlib.sha256(np.asarray(x).tobytes()).hexdigest()[:16]


def _golden_models():
    scm = random_scm(jax.random.key(21), 6, mechanism="mixed", noise="mixed")
    members = [
        random_scm(jax.random.key(i), 5, mechanism=f, noise="mixed", edge_prob=0.6)
        for i, f in enumerate(["linear", "mlp", "tree"])
    ]
    ens = jaxscm.stack(members)
    return {
        "scm": scm,
        "do(scm)": do(scm, {"x2": 0.5}),
        "ensemble": ens,
        "do(ensemble)": do(ens, {"x1": -1.0}),
    }


# Rows of `jaxscm.sample(key(5), model, 40)` recorded from main (commit 4703cae,
# CPU x86-64, float32), where the plain call already ran the compiled program.
_GOLDEN = {
    "scm": "2ff5d85a362172ff",
    "do(scm)": "60dd55c5e457fde9",
    "ensemble": "16bacd27677374c5",
    "do(ensemble)": "73a2ecbeba01b561",
}


@pytest.mark.parametrize("name", list(_GOLDEN))
def test_sample__plain_equals_jitted_equals_recorded_rows(name):
    model = _golden_models()[name]
    key = jax.random.key(5)
    plain = sample(key, model, 40)
    jitted = jax.jit(sample, static_argnums=2)(key, model, 40)
    np.testing.assert_array_equal(np.asarray(plain), np.asarray(jitted))
    assert _rows_sha(plain) == _GOLDEN[name]
