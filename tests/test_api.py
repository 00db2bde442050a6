"""The public surface of jaxscm, bridge and finetune, and what importing them costs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import jaxscm

JAXSCM = Path(jaxscm.__file__).parent
HEAVY = ("torch", "dowhy", "sklearn", "pandas", "causallearn", "flax", "tabpfn")


def test_jaxscm__import_loads_no_heavy_framework():
    code = (
        "import sys, jax, jaxscm\n"
        "import jaxscm as j\n"
        "j.random_scm(jax.random.key(0), 3)\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"import jaxscm pulled in: {out.stdout.strip()}"


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (relative imports resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from . import x / from .m import x inside jaxscm/
                base = "jaxscm" + (f".{base}" if base else "")
            names.add(base)
            names |= {f"{base}.{a.name}" for a in node.names}
    return names


def test_jaxscm__core_modules_never_import_the_front_end():
    # The pure-JAX core is every flat jaxscm/*.py; the front end is the subpackages.
    core = sorted(JAXSCM.glob("*.py"))
    assert {p.name for p in core} >= {"_sample.py", "_dags.py", "_schema.py"}
    front = ("jaxscm.fitting", "jaxscm.distillation")
    for path in core:
        bad = sorted(
            m for m in _imports(path) if m.startswith(front) or m.split(".")[0] in HEAVY
        )
        assert bad == [], f"{path.name} imports {bad}"
    assert {p.name for p in (JAXSCM / "fitting").glob("*.py")} >= {"_fit_scm.py"}
    assert {p.name for p in (JAXSCM / "distillation").glob("*.py")} >= {"_distill.py"}


def test_imports__detects_a_front_end_import(tmp_path):
    # The static check above must be able to fail.
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from .fitting import fit_scm\n    import dowhy.gcm\n")
    assert {"jaxscm.fitting", "jaxscm.fitting.fit_scm", "dowhy.gcm"} <= _imports(f)


def test_jaxscm__all_is_a_known_snapshot():
    # Adding to or removing from the public API is a decision: edit this on purpose.
    assert sorted(jaxscm.__all__) == [
        "Additive",
        "Classifier",
        "Column",
        "Constant",
        "DiscoveryOptions",
        "Empirical",
        "Ensemble",
        "FitInfo",
        "FormatError",
        "LabelOptions",
        "Linear",
        "MLP",
        "Mapped",
        "MarginalOptions",
        "Mechanism",
        "PARAMETRIC_FAMILIES",
        "Parametric",
        "PointMass",
        "Root",
        "SCM",
        "SchemaError",
        "SurrogateOptions",
        "TreeEnsemble",
        "atomic_directory",
        "atomic_write",
        "compilation_cache_dir",
        "discover",
        "distill",
        "do",
        "enable_compilation_cache",
        "fit",
        "fit_scm",
        "gaussian",
        "infer_schema",
        "load",
        "load_fit",
        "local_rows",
        "propagate",
        "random_scm",
        "sample",
        "sample_dags",
        "sample_noise",
        "sample_sharded",
        "save",
        "save_fit",
        "seeded_numpy",
        "sharding_for",
        "stack",
    ]
    assert len(set(jaxscm.__all__)) == len(jaxscm.__all__)
    for name in jaxscm.__all__:
        assert hasattr(jaxscm, name), name


def test_jaxscm__front_end_subpackages_are_known_snapshots_and_the_same_objects():
    import jaxscm.distillation
    import jaxscm.fitting

    assert sorted(jaxscm.fitting.__all__) == [
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
    assert sorted(jaxscm.distillation.__all__) == [
        "SurrogateFidelityError",
        "SurrogateOptions",
        "SurrogateWarning",
        "distill",
    ]
    for sub in (jaxscm.fitting, jaxscm.distillation):
        for name in sub.__all__:
            if name in jaxscm.__all__:
                assert getattr(jaxscm, name) is getattr(sub, name), name
    # the subpackages do not shadow the public functions of the same stem
    assert callable(jaxscm.fit)
    assert callable(jaxscm.distill)


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
    assert sorted(names.split(",")) == [
        "CausalMixFTClassifier",
        "FinetuneConfig",
        "FinetuneResult",
        "QualityReport",
        "finetune",
        "load_tfm",
        "quality_report",
        "write_report",
    ]


def test_augmenters__listing_imports_no_generator_and_all_is_a_snapshot():
    # names() and make's registry are lazy: no torch, sklearn, ctgan or imblearn
    # until a generator is made.
    code = (
        "import sys, finetune.augmenters as a\n"
        "a.names()\n"
        "heavy = ('torch', 'sklearn', 'ctgan', 'imblearn', 'tabpfn')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
        "print(','.join(a.__all__))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    heavy, names = out.stdout.rstrip("\n").split("\n")
    assert heavy == "", f"import finetune.augmenters pulled in: {heavy}"
    assert sorted(names.split(",")) == [
        "CONDITIONAL",
        "Generator",
        "class_codes",
        "make",
        "names",
    ]


def test_bridge__all_is_a_known_snapshot():
    import bridge

    assert sorted(bridge.__all__) == [
        "arrow_schema",
        "from_torch",
        "read_table",
        "stream",
        "table_format",
        "to_frame",
        "to_torch",
        "verify_dataset",
        "write_dataset",
        "write_parquet",
        "write_samples",
    ]
    for name in bridge.__all__:
        assert callable(getattr(bridge, name)), name
