"""Affine predictors: linear regression and logistic/softmax regression."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from jaxscm._output import OUTPUTS, finish
from jaxscm._pytree import pytree_dataclass, static


@pytree_dataclass
class Linear:
    """`f(x) = output(x @ coef + intercept)`.

    Attributes:
      coef: (p,) for a scalar output, (p, k) for k outputs (softmax logits).
      intercept: () or (k,).
      output: "identity" (regression), "sigmoid" (binary logistic regression, logits
        of shape (n,) become probabilities (n, 2)) or "softmax".

    Examples:
      >>> import jax.numpy as jnp
      >>> f = Linear(coef=jnp.array([2.0, -1.0]), intercept=jnp.array(0.5))
      >>> f(jnp.array([[1.0, 1.0]])).tolist()
      [1.5]
    """

    coef: Float[Array, " p *k"]
    intercept: Float[Array, "*k"]
    output: str = static(default="identity")

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise ValueError(
                f"Linear.output must be one of {OUTPUTS}, got {self.output!r}"
            )

    @property
    def n_inputs(self) -> int:
        """Number of parent columns this predictor takes."""
        return int(jnp.shape(self.coef)[0])

    def __call__(self, x: Float[Array, "n p"]) -> Float[Array, " n *k"]:
        """Evaluates the predictor on parent values `x`."""
        if self.n_inputs == 0:
            z = jnp.broadcast_to(
                self.intercept, (x.shape[0], *jnp.shape(self.intercept))
            )
        else:
            z = x @ self.coef + self.intercept[None, ...]
        return finish(z, self.output)
