"""Package boundaries, checked statically on the source (no module is imported).

* `finetune` never imports `benchmarks`, except the `demo` and `bench` subcommands,
  and those only inside functions (lazily): the declared exception.
* `benchmarks` uses only public names of `finetune`, `bridge` and `jaxscm`.
* The temp-file-then-`os.replace` idiom lives only in `jaxscm._atomic`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The declared exception: these two subcommands run the benchmark datasets / scripts.
BENCHMARKS_ALLOWED = {"finetune/cli/demo.py", "finetune/cli/bench.py"}
# The tree-layout study times the private sklearn converter itself (which estimator
# becomes which TreeEnsemble); it is not a user of the library. Every other benchmark
# goes through public names.
# The file fuzzer forges checksums the way an attacker who edits a file would, so it
# calls the loaders' private digest functions; it tests the library, it does not use it.
PRIVATE_ALLOWED = {
    ("benchmarks/tree_strategies.py", "jaxscm.distillation._sklearn"),
    ("benchmarks/fuzz_files.py", "jaxscm.fitting._fit_scm"),
    ("benchmarks/fuzz_files.py", "jaxscm.fitting._fit_scm._record_sha"),
    ("benchmarks/fuzz_files.py", "finetune._checkpoint"),
    ("benchmarks/fuzz_files.py", "finetune._persist"),
    # one discovery and one cache of node fits shared by the label rules compared
    ("benchmarks/label_mechanism.py", "jaxscm.fitting._build"),
    # the "fast" mechanism rule's own view of a node (seed, split, models): the
    # study of how many boosting iterations the rule needs
    ("benchmarks/mechanism_rule.py", "jaxscm.fitting._fit"),
    # the un-jitted body of jaxscm.sample: the op-by-op baseline of a plain call
    ("benchmarks/compile_time.py", "jaxscm._sample"),
    ("benchmarks/compile_time.py", "jaxscm._sample._sample"),
}


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(module, at module level) for every import statement in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    top = {id(node) for node in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append((node.module, id(node) in top))
            out += [
                (f"{node.module}.{a.name}", id(node) in top)
                for a in node.names
                if a.name.startswith("_")
            ]
    return out


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_finetune__imports_benchmarks_only_lazily_in_demo_and_bench():
    offenders, lazy = [], set()
    for path in _sources("finetune"):
        for module, top in _imports(path):
            if module.split(".")[0] != "benchmarks":
                continue
            if _rel(path) in BENCHMARKS_ALLOWED and not top:
                lazy.add(_rel(path))
            else:
                offenders.append(f"{_rel(path)}: {module}")
    assert offenders == []
    assert lazy == BENCHMARKS_ALLOWED  # the exception is still needed, and used


def test_benchmarks__use_only_public_names_of_the_libraries():
    offenders = []
    for path in _sources("benchmarks"):
        for module, _ in _imports(path):
            parts = module.split(".")
            if parts[0] not in ("finetune", "bridge", "jaxscm"):
                continue
            if any(p.startswith("_") for p in parts[1:]) and (
                (_rel(path), module) not in PRIVATE_ALLOWED
            ):
                offenders.append(f"{_rel(path)}: {module}")
    assert offenders == []


@pytest.mark.parametrize("package", ["jaxscm", "bridge", "finetune", "benchmarks"])
def test_atomic_write__is_the_only_os_replace(package):
    calls = []
    for path in _sources(package):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("replace", "rename")
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "os"
            ):
                calls.append(_rel(path))
    assert set(calls) <= {"jaxscm/_atomic.py"}
