"""JAX <-> PyTorch through DLPack: zero-copy on the same device."""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:  # torch is imported when first used: to_frame/write_parquet need none
    import torch


def to_torch(x: jax.Array) -> torch.Tensor:
    """Hands a JAX array to PyTorch without copying when both live on the same device.

    Args:
      x: a JAX array (not a PRNG key array: keys never cross to torch).

    Returns:
      A torch tensor sharing `x`'s memory (CPU, or the same GPU).

    Raises:
      TypeError: for PRNG key arrays or non-arrays.

    Examples:
      >>> import jax.numpy as jnp
      >>> to_torch(jnp.arange(3.0)).tolist()
      [0.0, 1.0, 2.0]
    """
    if not isinstance(x, jax.Array):
        raise TypeError(f"to_torch takes a jax.Array, got {type(x).__name__}")
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        raise TypeError(
            "PRNG key arrays do not cross to torch; pass jax.random.key_data(key)"
        )
    import torch

    return torch.from_dlpack(x)


def from_torch(t: torch.Tensor) -> jax.Array:
    """Hands a PyTorch tensor to JAX, zero-copy where DLPack allows it.

    Tensors that DLPack cannot share (non-contiguous, requiring grad) are made
    contiguous / detached first, which copies.

    Examples:
      >>> import torch
      >>> from_torch(torch.arange(3.0)).tolist()
      [0.0, 1.0, 2.0]
    """
    import torch

    if not isinstance(t, torch.Tensor):
        raise TypeError(f"from_torch takes a torch.Tensor, got {type(t).__name__}")
    t = t.detach()
    if not t.is_contiguous():
        t = t.contiguous()
    if t.dtype == torch.bool:
        # DLPack bool support varies across versions; route through numpy on CPU.
        return jnp.asarray(np.asarray(t.cpu()))
    return jax.dlpack.from_dlpack(t)
