"""The fitting front end: tables in, fitted and distilled SCM ensembles out.

Table preparation (`infer_schema`, `prepare`: the one schema of a table, built once),
causal discovery (`discover`, `DiscoveryOptions`), DoWhy fitting (`fit`,
`seeded_numpy`, the marginal fixes of numeric nodes `MarginalOptions`), and the
`fit_scm` pipeline with its model directories (`save_fit`,
`load_fit`). These modules import pandas, causal-learn, DoWhy and sklearn, each only
when a function needs it; the pure-JAX core (`jaxscm/*.py`) never imports this
package. Every name here is also importable from `jaxscm`.

Examples:
  >>> from jaxscm.fitting import DiscoveryOptions
  >>> DiscoveryOptions(method="fci").n_bootstrap
  20
"""

from jaxscm._schema import SchemaError
from jaxscm.fitting._discover import DiscoveryOptions, discover
from jaxscm.fitting._fit import fit, seeded_numpy
from jaxscm.fitting._fit_scm import FitInfo, fit_scm, load_fit, save_fit
from jaxscm.fitting._label import LabelOptions
from jaxscm.fitting._marginals import MarginalOptions
from jaxscm.fitting._table import Prepared, infer_schema, prepare

__all__ = [
    "DiscoveryOptions",
    "FitInfo",
    "LabelOptions",
    "MarginalOptions",
    "Prepared",
    "SchemaError",
    "discover",
    "fit",
    "fit_scm",
    "infer_schema",
    "load_fit",
    "prepare",
    "save_fit",
    "seeded_numpy",
]
