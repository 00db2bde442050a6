"""The `causalmix` / `scm_only` rejection sampler on hand-built jaxscm models (fast).

The generators' fit (`jaxscm.fit_scm`) is covered by the slow parametrised tests in
test_augmenters; here the compiled class-conditional draw is checked against the
pool it draws from, on models whose class shares are known.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscm
from bridge._classes import _pool, bucket, draw_classes
from finetune.augmenters import make
from finetune.augmenters._scm import CausalMix
from jaxscm import SCM, Classifier, Column, Linear, Root, gaussian


def _rare(intercept: float = -5.0) -> SCM:
    """x ~ N(0, 1); P(y = "b" | x) = sigmoid(x + intercept): ~1.5 % at -5."""
    lin = Linear(
        coef=jnp.array([[0.0, 1.0]]),
        intercept=jnp.array([0.0, intercept]),
        output="softmax",
    )
    return SCM(
        mechanisms=(Root(gaussian()), Classifier(f=lin)),
        columns=(Column("x"), Column("y", "categorical", ("a", "b"), is_target=True)),
        parents=((), (0,)),
    )


def _ensemble() -> jaxscm.Ensemble:
    return jaxscm.stack(
        [
            jaxscm.random_scm(
                jax.random.key(i), 4, n_classes=2, target=True, edge_prob=0.6
            )
            for i in range(2)
        ]
    )


def test_draw_classes__row_i_is_the_next_pool_row_of_its_class():
    model, key = _ensemble(), jax.random.key(3)
    want = np.random.default_rng(0).integers(0, 2, 40).astype(np.int32)
    rows, avail, asked = draw_classes(key, model, 64, 3, 2, want)
    rows, pool = np.asarray(rows), np.asarray(_pool(key, model, 64))
    assert np.asarray(asked).tolist() == np.bincount(want, minlength=2).tolist()
    assert (np.asarray(avail) == np.bincount(pool[:, 3].astype(int), minlength=2)).all()
    for c in (0, 1):
        of_c = pool[pool[:, 3] == c]
        np.testing.assert_array_equal(rows[want == c], of_c[: (want == c).sum()])


def test_draw_classes__a_short_class_is_reported_not_faked():
    want = np.ones(50, np.int32)
    rows, avail, asked = draw_classes(jax.random.key(0), _rare(), 64, 1, 2, want)
    assert int(asked[1]) == 50 > int(avail[1])
    got = np.asarray(rows)[:, 1]
    assert (got[: int(avail[1])] == 1).all()
    assert (got[int(avail[1]) :] != 1).any()


def test_causalmix__balanced_rows_for_a_rare_class_in_one_compiled_call():
    gen = CausalMix.from_model(_rare(), seed=0)
    share = gen.model_class_share_[1]
    assert 0.005 < share < 0.03
    X, y = gen.sample(256, seed=1, y="balanced")
    assert y.value_counts().to_dict() == {"a": 128, "b": 128}
    assert gen.rounds_ == 1
    assert gen.acceptance_ < 0.1  # ~128 / share rows drawn for 256 kept
    # exact conditional: x | y = b from rejection matches a large plain draw
    big = np.asarray(jaxscm.sample(jax.random.key(7), _rare(), 400_000))
    ref = big[big[:, 1] == 1, 0]
    assert abs(X["x"][y == "b"].mean() - ref.mean()) < 4 * ref.std() / np.sqrt(128)
    again, _ = gen.sample(256, seed=1, y="balanced")
    other, _ = gen.sample(256, seed=2, y="balanced")
    assert X.equals(again)
    assert not X.equals(other)


def test_causalmix__an_unreachable_class_fails_naming_it():
    gen = CausalMix.from_model(_rare(-40.0), probe_rows=64, max_rounds=2)
    assert gen.model_class_share_[1] == 0
    with pytest.raises(ValueError, match="drew only 0 of the 5 rows of class 'b'"):
        gen.sample(5, y="b")
    _, y = gen.sample(5, seed=0)  # unconditional draws still work
    assert (y == "a").all()


def test_causalmix__options_and_models_are_checked():
    with pytest.raises(ValueError, match="n_dags must be an integer >= 1"):
        make("causalmix", n_dags=0)
    with pytest.raises(ValueError, match="safety must be"):
        make("scm_only", safety=0.5)
    bare = jaxscm.random_scm(jax.random.key(0), 3)
    with pytest.raises(ValueError, match="exactly one categorical target"):
        CausalMix.from_model(bare)
    assert make("scm_only").name == "scm_only"
    assert make("causalmix").streaming
    assert make("causalmix").conditional == "rejection"


def test_bucket__rounds_up_to_few_sizes():
    sizes = {bucket(r) for r in range(1, 2049)}
    assert len(sizes) < 45
    assert all(bucket(r) >= r for r in range(1, 5000))
