"""bridge: the one place where JAX meets PyTorch and pandas."""

from bridge._torch import from_torch, to_torch

__all__ = ["from_torch", "to_torch"]
