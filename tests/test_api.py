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
        "heavy = [m for m in ('torch', 'dowhy', 'sklearn', 'pandas', 'causallearn',"
        " 'tabpfn') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"import jaxscm pulled in: {out.stdout.strip()}"


def test_jaxscm__all_is_a_known_snapshot():
    # Adding to the public API is a decision: update this list on purpose.
    core = {
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
        "Mechanism",
        "Parametric",
        "Root",
        "TreeEnsemble",
        "atomic_directory",
        "atomic_write",
        "do",
        "gaussian",
        "load",
        "propagate",
        "random_scm",
        "sample",
        "sample_noise",
        "save",
        "stack",
    }
    assert core <= set(jaxscm.__all__)
    for name in jaxscm.__all__:
        assert hasattr(jaxscm, name), name


def test_finetune__import_is_cheap_and_all_is_a_known_snapshot():
    # `import finetune` (and the CLI's parser) must not pay for torch or tabpfn.
    code = (
        "import sys, finetune, finetune.cli\n"
        "finetune.cli.build_parser()\n"
        "print(','.join(m for m in ('torch', 'tabpfn', 'dowhy', 'sklearn')"
        " if m in sys.modules))\n"
        "print(','.join(finetune.__all__))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    heavy, names = out.stdout.rstrip("\n").split("\n")
    assert heavy == "", f"import finetune pulled in: {heavy}"
    assert set(names.split(",")) == {
        "CausalMixFTClassifier",
        "FinetuneConfig",
        "FinetuneResult",
        "finetune",
        "load_tfm",
    }


def test_bridge__all_is_a_known_snapshot():
    import bridge

    assert set(bridge.__all__) == {
        "arrow_schema",
        "from_torch",
        "read_table",
        "stream",
        "table_format",
        "to_frame",
        "to_torch",
        "write_parquet",
        "write_samples",
    }
    for name in bridge.__all__:
        assert callable(getattr(bridge, name)), name
