"""Distillation: fitted DoWhy gcm models -> pure-JAX `SCM` PyTrees.

The one boundary between DoWhy/sklearn objects and the core: a converter registry
(`distill`), the sklearn converters, the schema at the DoWhy boundary, and the opt-in
MLP surrogates (`SurrogateOptions`; flax and optax are imported only when one is
trained). The pure-JAX core never imports this package. Every name here is also
importable from `jaxscm`.

Examples:
  >>> from jaxscm.distillation import SurrogateOptions
  >>> SurrogateOptions().min_fidelity > 0
  True
"""

from jaxscm.distillation._distill import distill
from jaxscm.distillation._surrogate import (
    SurrogateFidelityError,
    SurrogateOptions,
    SurrogateWarning,
)

__all__ = [
    "SurrogateFidelityError",
    "SurrogateOptions",
    "SurrogateWarning",
    "distill",
]
