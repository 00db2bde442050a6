"""The public surface of jaxscm and what importing it costs."""

from __future__ import annotations

import subprocess
import sys

import jaxscm


def test_jaxscm__import_loads_no_heavy_framework():
    code = (
        "import sys, jax, jaxscm\n"
        "import jaxscm as j\n"
        "j.random_scm(jax.random.key(0), 3)\n"
        "heavy = [m for m in ('torch', 'dowhy', 'sklearn', 'pandas', 'causallearn', 'tabpfn')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import jaxscm pulled in: {out.stdout.strip()}"


def test_jaxscm__all_is_a_known_snapshot():
    # Adding to the public API is a decision: update this list on purpose.
    core = {
        "MLP", "PARAMETRIC_FAMILIES", "SCM", "Additive", "Classifier", "Column", "Constant",
        "Empirical", "Ensemble", "FormatError", "Linear", "Mechanism", "Parametric", "Root",
        "TreeEnsemble", "do", "gaussian", "load", "propagate", "random_scm", "sample",
        "sample_noise", "save", "stack",
    }
    assert core <= set(jaxscm.__all__)
    for name in jaxscm.__all__:
        assert hasattr(jaxscm, name), name
