"""Test configuration shared by the whole suite.

JAX runs on the CPU with strict rank and dtype promotion, so an accidental broadcast
or float64 leak in the core fails loudly instead of silently costing speed.
"""

from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("OMP_NUM_THREADS", "1")
# The CLI and the estimator switch JAX's persistent compilation cache on; tests stay
# hermetic (no writes to the user's cache) unless the caller chooses a folder.
os.environ.setdefault("CAUSALMIXFT_JAX_CACHE", "off")

import jax  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")

settings.register_profile("ci", max_examples=8, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=40, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def key() -> jax.Array:
    """A fixed PRNG key."""
    return jax.random.key(0)
