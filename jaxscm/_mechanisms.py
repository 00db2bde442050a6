"""Node mechanisms, following DoWhy's split `y = g(f(parents) + noise)`.

Every mechanism supplies two pure functions:

* `sample_noise(key, n)` draws the node's exogenous noise, shape (n,);
* `apply(parents, noise)` maps parent values (n, p) and noise (n,) to the node (n,).

Categorical nodes produce integer codes 0..k-1 stored as floats.
"""

from __future__ import annotations

from typing import Any, Protocol

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from jaxscm._link import LINKS, apply_link, invert_link
from jaxscm._pytree import pytree_dataclass, static


class Mechanism(Protocol):
    """What the sampler needs from a node mechanism."""

    def sample_noise(self, key: jax.Array, n: int) -> Float[Array, " n"]: ...

    def apply(
        self, parents: Float[Array, "n p"], noise: Float[Array, " n"]
    ) -> Float[Array, " n"]: ...


@pytree_dataclass
class Root:
    """A source node: the value is its noise (an `Empirical` or `Parametric`).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxscm import Empirical
      >>> r = Root(noise=Empirical(jnp.array([3.0])))
      >>> r.apply(jnp.zeros((2, 0)), r.sample_noise(jax.random.key(0), 2)).tolist()
      [3.0, 3.0]
    """

    noise: Any

    def sample_noise(self, key: jax.Array, n: int) -> Float[Array, " n"]:
        """Draws the node's values."""
        return self.noise.sample(key, n)

    def apply(
        self, parents: Float[Array, "n p"], noise: Float[Array, " n"]
    ) -> Float[Array, " n"]:
        """Returns the noise unchanged."""
        del parents
        return noise


@pytree_dataclass
class Additive:
    """An additive-noise model, optionally post-nonlinear or discrete.

    `y = link(f(parents) + noise)`; with `discrete=True`,
    `y = round(f(parents)) + noise` (DoWhy's `DiscreteAdditiveNoiseModel`,
    integer-valued noise).

    Attributes:
      f: a predictor with a scalar output (`Linear`, `MLP`, `TreeEnsemble`, ...).
      noise: an `Empirical` or `Parametric` noise model.
      link: "identity", "exp" or "log".
      discrete: round the prediction before adding the noise.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxscm import Linear, gaussian
      >>> m = Additive(f=Linear(jnp.array([2.0]), jnp.array(0.0)), noise=gaussian())
      >>> m.apply(jnp.array([[1.0]]), jnp.array([0.5])).tolist()
      [2.5]
    """

    f: Any
    noise: Any
    link: str = static(default="identity")
    discrete: bool = static(default=False)

    def __post_init__(self) -> None:
        if self.link not in LINKS:
            raise ValueError(f"link must be one of {tuple(LINKS)}, got {self.link!r}")

    def sample_noise(self, key: jax.Array, n: int) -> Float[Array, " n"]:
        """Draws the additive noise."""
        return self.noise.sample(key, n)

    def apply(
        self, parents: Float[Array, "n p"], noise: Float[Array, " n"]
    ) -> Float[Array, " n"]:
        """Computes the node from its parents and noise."""
        pred = self.f(parents)
        if self.discrete:
            pred = jnp.round(pred)
        return apply_link(pred + noise, self.link)

    def abduct(
        self, parents: Float[Array, "n p"], y: Float[Array, " n"]
    ) -> Float[Array, " n"]:
        """Recovers the noise that produced `y`.

        The model is invertible in its noise.
        """
        pred = self.f(parents)
        if self.discrete:
            pred = jnp.round(pred)
        return invert_link(y, self.link) - pred


@pytree_dataclass
class Classifier:
    """A categorical node sampled like DoWhy's `ClassifierFCM`.

    With class probabilities `p = f(parents)` of shape (n, k) and uniform noise
    `u ~ U(0, 1)`, the node takes the first class `c` with `cumsum(p)[c] >= u`, i.e. an
    inverse-CDF draw. The value is the class code `c` (as a float).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxscm import Linear
      >>> logp = jnp.log(jnp.array([0.2, 0.3, 0.5]))
      >>> m = Classifier(f=Linear(jnp.zeros((1, 3)), logp, output="softmax"))
      >>> m.apply(jnp.zeros((3, 1)), jnp.array([0.1, 0.4, 0.9])).tolist()
      [0.0, 1.0, 2.0]
    """

    f: Any

    def sample_noise(self, key: jax.Array, n: int) -> Float[Array, " n"]:
        """Draws U(0, 1) noise."""
        return jax.random.uniform(key, (n,))

    def probabilities(self, parents: Float[Array, "n p"]) -> Float[Array, "n k"]:
        """Class probabilities given the parents."""
        return self.f(parents)

    def apply(
        self, parents: Float[Array, "n p"], noise: Float[Array, " n"]
    ) -> Float[Array, " n"]:
        """Inverse-CDF draw of the class code."""
        p = self.f(parents)
        cdf = jnp.cumsum(p, axis=-1)
        # number of classes whose cumulative mass is still below u = first index with
        # cdf >= u; the clip guards against cdf[-1] rounding to just under 1.
        code = jnp.sum(cdf < noise[:, None], axis=-1)
        return jnp.minimum(code, p.shape[-1] - 1).astype(noise.dtype)


@pytree_dataclass
class Constant:
    """A node held at a fixed value (what `do` puts in place).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> c = Constant(value=jnp.array(2.0))
      >>> c.apply(jnp.zeros((2, 0)), c.sample_noise(jax.random.key(0), 2)).tolist()
      [2.0, 2.0]
    """

    value: Float[Array, ""]

    def sample_noise(self, key: jax.Array, n: int) -> Float[Array, " n"]:
        """No randomness: zeros."""
        del key
        return jnp.zeros((n,), jnp.result_type(self.value))

    def apply(
        self, parents: Float[Array, "n p"], noise: Float[Array, " n"]
    ) -> Float[Array, " n"]:
        """The constant, broadcast to the rows."""
        del parents
        return jnp.broadcast_to(self.value, noise.shape).astype(noise.dtype)
