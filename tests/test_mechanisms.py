"""Mechanism families against hand computations and reference libraries."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from jaxscm import (
    MLP,
    PARAMETRIC_FAMILIES,
    SCM,
    Additive,
    Classifier,
    Column,
    Empirical,
    Linear,
    Parametric,
    Root,
    TreeEnsemble,
    gaussian,
)

TEST_FAILURE_RATE = 1e-4  # declared once: the chance a correct statistical test fails


def _hand_tree() -> TreeEnsemble:
    """Two trees over 2 features.

    tree 0:            x0 <= 0.5
                     /          \\
               x1 <= -1.0       leaf 10.0
               /       \\
          leaf 1.0   leaf 2.0
    tree 1: a single leaf 0.25 (depth 0), padded to the same node count.
    NaN goes left at the root of tree 0 and right at its second split.
    """
    big = np.array([0, 1, 0, 0, 0])
    return TreeEnsemble(
        feature=jnp.asarray(np.stack([big, np.zeros(5, int)]), jnp.int32),
        threshold=jnp.asarray([[0.5, -1.0, 0, 0, 0], [0, 0, 0, 0, 0]], jnp.float32),
        left=jnp.asarray([[1, 3, 2, 3, 4], [0, 1, 2, 3, 4]], jnp.int32),
        right=jnp.asarray([[2, 4, 2, 3, 4], [0, 1, 2, 3, 4]], jnp.int32),
        missing_left=jnp.asarray([[True, False, True, True, True]] + [[True] * 5]),
        value=jnp.asarray([[0, 0, 10.0, 1.0, 2.0], [0.25, 0, 0, 0, 0]], jnp.float32)[
            ..., None
        ],
        base=jnp.asarray([100.0], jnp.float32),
        depth=2,
    )


def test_tree__hand_built_tree_is_reproduced_exactly():
    x = jnp.asarray(
        [
            [0.0, -2.0],  # left, left -> 1
            [0.5, -1.0],  # boundary values go left: <= -> 1
            [0.0, 0.0],  # left, right -> 2
            [0.6, -5.0],  # right -> 10
            [np.nan, 3.0],  # NaN left at root, then right -> 2
            [0.0, np.nan],  # NaN right at the second split -> 2
        ],
        jnp.float32,
    )
    out = _hand_tree()(x)
    np.testing.assert_array_equal(
        np.asarray(out), np.array([1, 1, 2, 10, 2, 2]) + 100.25
    )


def test_tree__mean_aggregation_and_multi_output():
    t = _hand_tree()
    mean = TreeEnsemble(**{**t.__dict__, "aggregation": "mean"})
    x = jnp.asarray([[0.0, -2.0]], jnp.float32)
    assert mean(x).tolist() == [100.0 + (1.0 + 0.25) / 2]
    soft = TreeEnsemble(
        **{
            **t.__dict__,
            "value": jnp.concatenate([t.value, -t.value], axis=-1),
            "base": jnp.zeros(2),
            "output": "softmax",
        }
    )
    p = soft(x)
    assert p.shape == (1, 2)
    np.testing.assert_allclose(np.asarray(p.sum(-1)), [1.0], rtol=1e-6)


def test_tree__inconsistent_shapes_are_refused():
    t = _hand_tree()
    with pytest.raises(ValueError, match="TreeEnsemble.left has shape"):
        TreeEnsemble(**{**t.__dict__, "left": t.left[:, :3]})


def _random_trees(rng, t, leaves, m, n_features=3):
    """`t` random binary trees with up to `leaves` leaves each, node ids shuffled
    (children before parents too), padded to `m` nodes the way `stack` pads them:
    unreachable nodes whose children are node 0."""
    feature = rng.integers(0, n_features, (t, m)).astype(np.int32)
    threshold = rng.normal(size=(t, m)).astype(np.float32)
    left = np.zeros((t, m), np.int32)
    right = np.zeros((t, m), np.int32)
    missing = rng.random((t, m)) < 0.5
    for i in range(t):
        kids: dict[int, tuple[int, int]] = {}
        open_leaves, size = [0], 1
        for _ in range(rng.integers(0, leaves)):
            v = open_leaves.pop(rng.integers(len(open_leaves)))
            kids[v] = (size, size + 1)
            open_leaves += [size, size + 1]
            size += 2
        ids = np.concatenate([[0], 1 + rng.permutation(size - 1)])  # root stays 0
        for v in range(size):
            a, b = kids.get(v, (v, v))
            left[i, ids[v]], right[i, ids[v]] = ids[a], ids[b]
    value = rng.normal(size=(t, m, 1)).astype(np.float32)
    return TreeEnsemble(
        feature=jnp.asarray(feature),
        threshold=jnp.asarray(threshold),
        left=jnp.asarray(left),
        right=jnp.asarray(right),
        missing_left=jnp.asarray(missing),
        value=jnp.asarray(value),
        base=jnp.zeros(1, jnp.float32),
        depth=leaves,
    )


@pytest.mark.parametrize("rows", [300, 5000])  # 5000 rows: three row blocks
def test_tree__leaf_words_reach_the_loop_leaves_and_outputs_bit_for_bit(rows):
    rng = np.random.default_rng(0)
    te = _random_trees(rng, t=40, leaves=32, m=63)
    assert te.words is not None
    x = rng.normal(size=(rows, 3)).astype(np.float32)
    x[::5, 0], x[::11, 2], x[::13, 1] = np.nan, np.inf, -np.inf
    x = jnp.asarray(x)
    loop = te._loop_leaves(x)
    np.testing.assert_array_equal(np.asarray(te.leaves(x)), np.asarray(loop))
    per_tree = jax.vmap(lambda v, i: v[i])(te.value, loop)
    want = per_tree.sum(0)[:, 0] + te.base[0]
    np.testing.assert_array_equal(np.asarray(jax.jit(te)(x)), np.asarray(want))


def test_tree__leaf_words_only_for_trees_of_up_to_63_nodes():
    rng = np.random.default_rng(1)
    assert _hand_tree().words is not None
    big = _random_trees(rng, t=3, leaves=40, m=79)
    assert big.words is None  # the loop: same results, just not the fast path
    x = jnp.asarray(rng.normal(size=(50, 3)), jnp.float32)
    np.testing.assert_array_equal(
        np.asarray(big.leaves(x)), np.asarray(big._loop_leaves(x))
    )


def test_tree__leaf_words_refuse_tables_that_are_not_trees():
    from jaxscm._tree import leaf_words

    def words(left, right):
        left, right = np.array([left]), np.array([right])
        zeros = np.zeros_like(left)
        return leaf_words(zeros, zeros.astype(np.float32), left, right, zeros > 0)

    assert words([1, 1, 2], [2, 1, 2]) is not None
    assert words([1, 1, 1], [1, 1, 2]) is None  # two equal children
    assert words([1, 0, 2], [2, 0, 2]) is None  # a cycle back to the root
    assert words([1, 3, 2, 3], [2, 2, 2, 3]) is None  # node 2 has two parents
    assert words([1, 1, 5], [2, 1, 2]) is None  # out of range
    assert words([1, 1, 2], [2, 0, 2]) is None  # a leaf on one side only


def test_tree__leaf_words_are_rebuilt_from_the_tables_not_taken_as_given():
    t = _hand_tree()
    other = _random_trees(np.random.default_rng(2), t=2, leaves=3, m=5)
    rebuilt = TreeEnsemble(**{**t.__dict__, "words": other.words})
    for a, b in zip(
        jax.tree.leaves(rebuilt.words), jax.tree.leaves(t.words), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_mlp__matches_a_numpy_forward_pass():
    rng = np.random.default_rng(0)
    ws = [rng.normal(size=(3, 5)), rng.normal(size=(5, 4)), rng.normal(size=(4, 1))]
    bs = [rng.normal(size=5), rng.normal(size=4), rng.normal(size=1)]
    x = rng.normal(size=(20, 3))
    h = x
    for w, b in zip(ws[:-1], bs[:-1], strict=False):
        h = np.tanh(h @ w + b)
    want = (h @ ws[-1] + bs[-1])[:, 0]
    f = MLP(
        weights=tuple(jnp.asarray(w, jnp.float32) for w in ws),
        biases=tuple(jnp.asarray(b, jnp.float32) for b in bs),
        activation="tanh",
    )
    np.testing.assert_allclose(
        np.asarray(f(jnp.asarray(x, jnp.float32))), want, rtol=1e-5, atol=1e-5
    )


def test_linear__sigmoid_output_is_two_class_probabilities():
    f = Linear(jnp.asarray([1.0]), jnp.asarray(0.0), output="sigmoid")
    p = np.asarray(f(jnp.asarray([[0.0], [np.log(3.0)]], jnp.float32)))
    np.testing.assert_allclose(p, [[0.5, 0.5], [0.25, 0.75]], rtol=1e-6)


def test_linear__rejects_unknown_output():
    with pytest.raises(ValueError, match="Linear.output must be one of"):
        Linear(jnp.zeros(1), jnp.zeros(()), output="probit")


SCIPY_FAMILIES = {
    "norm": ((), scipy.stats.norm),
    "uniform": ((), scipy.stats.uniform),
    "laplace": ((), scipy.stats.laplace),
    "logistic": ((), scipy.stats.logistic),
    "cauchy": ((), scipy.stats.cauchy),
    "gumbel_r": ((), scipy.stats.gumbel_r),
    "expon": ((), scipy.stats.expon),
    "halfnorm": ((), scipy.stats.halfnorm),
    "t": ((3.5,), scipy.stats.t),
    "gamma": ((2.5,), scipy.stats.gamma),
    "lognorm": ((0.6,), scipy.stats.lognorm),
    "beta": ((2.0, 5.0), scipy.stats.beta),
}


def test_parametric__table_covers_every_family():
    assert set(SCIPY_FAMILIES) == set(PARAMETRIC_FAMILIES)


@pytest.mark.parametrize("family", sorted(SCIPY_FAMILIES))
def test_parametric__matches_scipy_loc_scale_convention(family):
    shapes, dist = SCIPY_FAMILIES[family]
    loc, scale = 1.5, 2.0
    noise = Parametric(
        shapes=tuple(jnp.asarray(s, jnp.float32) for s in shapes),
        loc=jnp.asarray(loc, jnp.float32),
        scale=jnp.asarray(scale, jnp.float32),
        family=family,
    )
    draws = np.asarray(noise.sample(jax.random.key(3), 4000), np.float64)
    p = scipy.stats.kstest(draws, dist(*shapes, loc=loc, scale=scale).cdf).pvalue
    assert p > TEST_FAILURE_RATE, (family, p)


def test_parametric__wrong_shape_count_is_refused():
    with pytest.raises(ValueError, match="takes 1 shape parameter"):
        Parametric(shapes=(), loc=jnp.zeros(()), scale=jnp.ones(()), family="t")
    with pytest.raises(ValueError, match="unsupported noise family 'zipf'"):
        Parametric(shapes=(), loc=jnp.zeros(()), scale=jnp.ones(()), family="zipf")


def test_empirical__draws_only_stored_values_uniformly():
    values = jnp.asarray([-1.0, 0.0, 5.0], jnp.float32)
    draws = np.asarray(Empirical(values).sample(jax.random.key(0), 30000))
    counts = np.array([(draws == v).sum() for v in np.asarray(values)])
    assert counts.sum() == 30000
    assert scipy.stats.chisquare(counts).pvalue > TEST_FAILURE_RATE


def test_additive__post_nonlinear_link_and_discrete_rounding():
    f = Linear(jnp.asarray([1.0]), jnp.asarray(0.2))
    x = jnp.asarray([[1.0]], jnp.float32)
    e = jnp.asarray([0.3], jnp.float32)
    assert Additive(f, gaussian(), link="exp").apply(x, e).tolist() == pytest.approx(
        [np.exp(1.5)], rel=1e-6
    )
    assert Additive(f, gaussian(), discrete=True).apply(x, e).tolist() == pytest.approx(
        [1.3]
    )
    m = Additive(f, gaussian(), link="log")
    y = m.apply(x, e)
    np.testing.assert_allclose(np.asarray(m.abduct(x, y)), np.asarray(e), rtol=1e-6)


_Y = Column("y")


def _two_nodes(mech, col=_Y) -> SCM:
    return SCM(
        mechanisms=(Root(gaussian()), mech),
        columns=(Column("x"), col),
        parents=((), (0,)),
    )


def test_scm__wrong_parameter_shape_names_the_node():
    with pytest.raises(
        ValueError, match=r"node 'y' \(index 1\): mechanism Additive does not accept 1"
    ):
        _two_nodes(Additive(Linear(jnp.zeros(3), jnp.zeros(())), gaussian()))


def test_scm__classifier_needs_matching_categorical_column():
    clf = Classifier(Linear(jnp.zeros((1, 3)), jnp.zeros(3), output="softmax"))
    with pytest.raises(ValueError, match="needs a categorical column"):
        _two_nodes(clf)
    with pytest.raises(
        ValueError, match="yields 3 class probabilities but the column has 2"
    ):
        _two_nodes(clf, Column("y", "categorical", ("a", "b")))


def test_scm__parent_after_node_is_refused_as_cyclic():
    with pytest.raises(
        ValueError, match="node 'x' .* parent index 1 must be in \\[0, 0\\)"
    ):
        SCM(
            mechanisms=(
                Additive(Linear(jnp.ones(1), jnp.zeros(())), gaussian()),
                Root(gaussian()),
            ),
            columns=(Column("x"), Column("y")),
            parents=((1,), ()),
        )


def test_scm__duplicate_names_and_root_with_parents_are_refused():
    with pytest.raises(ValueError, match="duplicate node name 'x'"):
        SCM(
            mechanisms=(Root(gaussian()),) * 2,
            columns=(Column("x"),) * 2,
            parents=((), ()),
        )
    with pytest.raises(ValueError, match="a Root mechanism takes no parents"):
        _two_nodes(Root(gaussian()))


def test_column__validation_messages():
    with pytest.raises(ValueError, match="column 'c': a categorical column needs"):
        Column("c", "categorical")
    with pytest.raises(ValueError, match="column 'n': only categorical columns have"):
        Column("n", "numeric", ("a",))
    with pytest.raises(ValueError, match="kind must be one of"):
        Column("z", "text")  # type: ignore[arg-type]
