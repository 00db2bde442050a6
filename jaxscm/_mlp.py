"""Multi-layer perceptrons with sklearn's parameter layout."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from jaxscm._output import OUTPUTS, finish
from jaxscm._pytree import pytree_dataclass, static

ACTIVATIONS = {
    "identity": lambda z: z,
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "logistic": jax.nn.sigmoid,
}


@pytree_dataclass
class MLP:
    """`f(x) = output(W_L act(... act(x W_1 + b_1) ...) + b_L)`.

    The layout is sklearn's `MLPRegressor`/`MLPClassifier`: `weights[i]` has shape
    (fan_in, fan_out) and `biases[i]` (fan_out,). A final layer of width 1 yields a
    scalar output of shape (n,).

    Attributes:
      weights: per-layer weight matrices.
      biases: per-layer bias vectors.
      activation: hidden activation, one of "identity", "relu", "tanh", "logistic".
      output: "identity", "sigmoid" or "softmax" (see `Linear`).

    Examples:
      >>> import jax.numpy as jnp
      >>> f = MLP(weights=(jnp.ones((2, 3)), jnp.ones((3, 1))),
      ...         biases=(jnp.zeros(3), jnp.zeros(1)), activation="relu")
      >>> f(jnp.array([[1.0, -2.0]])).tolist()
      [0.0]
    """

    weights: tuple[Float[Array, "a b"], ...]
    biases: tuple[Float[Array, " b"], ...]
    activation: str = static(default="relu")
    output: str = static(default="identity")

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"MLP.activation must be one of {tuple(ACTIVATIONS)}, "
                f"got {self.activation!r}"
            )
        if self.output not in OUTPUTS:
            raise ValueError(
                f"MLP.output must be one of {OUTPUTS}, got {self.output!r}"
            )
        if len(self.weights) != len(self.biases) or not self.weights:
            raise ValueError(
                "MLP needs one bias per weight matrix and at least one layer"
            )

    @property
    def n_inputs(self) -> int:
        """Number of parent columns this predictor takes."""
        return int(jnp.shape(self.weights[0])[0])

    def __call__(self, x: Float[Array, "n p"]) -> Float[Array, " n *k"]:
        """Evaluates the network on parent values `x`."""
        act = ACTIVATIONS[self.activation]
        h = x
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            h = act(h @ w + b[None, :])
        z = h @ self.weights[-1] + self.biases[-1][None, :]
        if z.shape[-1] == 1:
            z = z[:, 0]
        return finish(z, self.output)
