"""jaxscm: structural causal models as pure-JAX PyTrees.

Fitted causal mechanisms (linear, logistic/softmax, tree ensembles, MLPs, empirical
and parametric noise, post-nonlinear links) held as immutable PyTrees of arrays, with
pure, jit-able and vmap-able sampling and interventions. The core imports only jax,
numpy, numpyro and jaxtyping; the fitting front end (causal discovery, DoWhy fitting,
distillation, in the subpackages `jaxscm.fitting` and `jaxscm.distillation`) imports
its heavy dependencies only when called.

Examples:
  >>> import jax
  >>> import jaxscm
  >>> scm = jaxscm.random_scm(jax.random.key(0), 30)
  >>> x = jax.jit(jaxscm.sample, static_argnums=2)(jax.random.key(1), scm, 1000)
  >>> x.shape
  (1000, 30)
"""

from typing import Any

from jaxscm._atomic import atomic_directory, atomic_write
from jaxscm._compile_cache import compilation_cache_dir, enable_compilation_cache
from jaxscm._do import do
from jaxscm._ensemble import Ensemble, stack
from jaxscm._io import FormatError, load, save
from jaxscm._linear import Linear
from jaxscm._marginal import Mapped, PointMass
from jaxscm._mechanisms import Additive, Classifier, Constant, Mechanism, Root
from jaxscm._mlp import MLP
from jaxscm._noise import PARAMETRIC_FAMILIES, Empirical, Parametric, gaussian
from jaxscm._random import random_scm
from jaxscm._sample import propagate, sample, sample_noise
from jaxscm._schema import Column, SchemaError
from jaxscm._scm import SCM
from jaxscm._shard import local_rows, sample_sharded, sharding_for
from jaxscm._tree import TreeEnsemble

# The fitting front end (`jaxscm.fitting`) and distillation (`jaxscm.distillation`)
# pull in causal-learn, DoWhy, sklearn, pandas or flax only when called, and are
# imported only on first use of one of their names: `import jaxscm` stays light (a
# test checks it in a subprocess). public name -> (module, attribute).
_LAZY: dict[str, tuple[str, str]] = {
    "distill": ("jaxscm.distillation", "distill"),
    "SurrogateOptions": ("jaxscm.distillation", "SurrogateOptions"),
    "discover": ("jaxscm.fitting", "discover"),
    "DiscoveryOptions": ("jaxscm.fitting", "DiscoveryOptions"),
    "sample_dags": ("jaxscm._dags", "sample_dags"),
    "fit": ("jaxscm.fitting", "fit"),
    "seeded_numpy": ("jaxscm.fitting", "seeded_numpy"),
    "fit_scm": ("jaxscm.fitting", "fit_scm"),
    "FitInfo": ("jaxscm.fitting", "FitInfo"),
    "LabelOptions": ("jaxscm.fitting", "LabelOptions"),
    "MarginalOptions": ("jaxscm.fitting", "MarginalOptions"),
    "save_fit": ("jaxscm.fitting", "save_fit"),
    "load_fit": ("jaxscm.fitting", "load_fit"),
    "infer_schema": ("jaxscm.fitting", "infer_schema"),
}

__all__ = [
    "MLP",
    "PARAMETRIC_FAMILIES",
    "SCM",
    "Additive",
    "Classifier",
    "Column",
    "Constant",
    "Empirical",
    "Ensemble",
    "FormatError",
    "Linear",
    "Mapped",
    "Mechanism",
    "Parametric",
    "PointMass",
    "Root",
    "SchemaError",
    "TreeEnsemble",
    "atomic_directory",
    "atomic_write",
    "compilation_cache_dir",
    "do",
    "enable_compilation_cache",
    "gaussian",
    "load",
    "local_rows",
    "propagate",
    "random_scm",
    "sample",
    "sample_noise",
    "sample_sharded",
    "save",
    "sharding_for",
    "stack",
]
__all__ += sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        value = getattr(importlib.import_module(module_name), attr)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'jaxscm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
