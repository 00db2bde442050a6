"""JAX's persistent compilation cache: where it lives, switching it off, bad entries."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

import jaxscm

ROOT = Path(__file__).resolve().parents[1]

# Samples a small model with a plain call after enabling the cache (every program
# stored, whatever its compile time) and prints the rows' bytes as hex.
_SCRIPT = """
import jax, numpy as np, jaxscm
folder = jaxscm.enable_compilation_cache(min_compile_time_s=0.0)
print("folder", folder)
scm = jaxscm.random_scm(jax.random.key(0), 6, mechanism="mixed")
x = jaxscm.sample(jax.random.key(1), scm, 32)
print("rows", np.asarray(x).tobytes().hex())
"""


# One process: store, load back (a cache hit after dropping the in-memory programs),
# then garbage in every entry: JAX warns, compiles afresh and the rows are the same.
_ONE_PROCESS = """
import sys, jax, numpy as np, jaxscm
from pathlib import Path
hits = []
jax.monitoring.register_event_listener(
    lambda event, **kw: hits.append(event)
    if event == "/jax/compilation_cache/cache_hits" else None
)
folder = jaxscm.enable_compilation_cache(sys.argv[1], min_compile_time_s=0.0)
scm = jaxscm.random_scm(jax.random.key(0), 5, mechanism="mixed")
def rows():
    return np.asarray(jaxscm.sample(jax.random.key(1), scm, 16)).tobytes().hex()
first = rows()
entries = [p for p in Path(folder).rglob("*") if p.is_file()]
jax.clear_caches()
cached, n_hits = rows(), len(hits)
for p in entries:
    p.write_bytes(b"not a compiled program")
jax.clear_caches()
print(len(entries), n_hits, first == cached, first == rows())
"""


def _run(env_value: str) -> tuple[str, str, str]:
    env = {**os.environ, "CAUSALMIXFT_JAX_CACHE": env_value, "JAX_PLATFORMS": "cpu"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    return lines["folder"], lines["rows"], out.stderr


@pytest.mark.parametrize("value", ["0", "off", "OFF", " false "])
def test_compilation_cache_dir__switched_off(monkeypatch, value):
    monkeypatch.setenv("CAUSALMIXFT_JAX_CACHE", value)
    assert jaxscm.compilation_cache_dir() is None
    before = jax.config.jax_compilation_cache_dir
    assert jaxscm.enable_compilation_cache() is None
    assert jax.config.jax_compilation_cache_dir == before


def test_compilation_cache_dir__env_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("CAUSALMIXFT_JAX_CACHE", str(tmp_path / "mine"))
    assert jaxscm.compilation_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("CAUSALMIXFT_JAX_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert jaxscm.compilation_cache_dir() == tmp_path / "xdg" / "causalmixft" / "jax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    want = tmp_path / "home" / ".cache" / "causalmixft" / "jax"
    assert jaxscm.compilation_cache_dir() == want


def test_import__leaves_jax_config_alone():
    code = (
        "import jax, jaxscm, bridge, finetune, finetune.cli\n"
        "print(jax.config.jax_compilation_cache_dir)\n"
    )
    env = {**os.environ, "CAUSALMIXFT_JAX_CACHE": "", "JAX_PLATFORMS": "cpu"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert out.stdout.strip() == "None"


@pytest.mark.slow
def test_enable_compilation_cache__stores_reuses_and_survives_garbage(tmp_path):
    folder = tmp_path / "cache"
    first_folder, first, _ = _run(str(folder))
    assert Path(first_folder) == folder
    entries = [p for p in folder.rglob("*") if p.is_file()]
    assert entries, "nothing was written to the cache"
    _, cached, _ = _run(str(folder))
    assert cached == first
    for p in entries:
        p.write_bytes(b"not a compiled program")
    _, recompiled, log = _run(str(folder))
    assert recompiled == first
    assert "Error reading persistent compilation cache entry" in log  # it did read
    off_folder, off, _ = _run("off")
    assert off_folder == "None"
    assert off == first


def test_enable_compilation_cache__hit_then_garbage_entries_recompile(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", _ONE_PROCESS, str(tmp_path / "cache")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    entries, hits, cached_same, recompiled_same = out.stdout.split()
    assert int(entries) > 0
    assert int(hits) > 0  # the second call loaded the program from disk
    assert cached_same == "True"
    assert recompiled_same == "True"
    assert "Error reading persistent compilation cache entry" in out.stderr


def _main_functions(path: Path) -> list[ast.FunctionDef]:
    tree = ast.parse(path.read_text())
    return [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"]


# compile_time measures compilation itself (cold and cached, in its own child
# processes); multihost_example joins jax.distributed first and is an example of
# sample_sharded, not a benchmark whose compiles are worth keeping; the dataset
# recipe downloads and cleans tables and compiles nothing.
_OWN_CACHE_POLICY = {"compile_time.py", "multihost_example.py", "datasets/recipe.py"}


def test_benchmarks__every_entry_point_switches_the_cache_on():
    mains = {
        p.relative_to(ROOT / "benchmarks").as_posix(): _main_functions(p)
        for p in sorted((ROOT / "benchmarks").rglob("*.py"))
    }
    missing = [
        name
        for name, found in mains.items()
        if found
        and name not in _OWN_CACHE_POLICY
        and "enable_compilation_cache" not in ast.unparse(found[0])
    ]
    assert len([m for m in mains.values() if m]) >= 15
    assert missing == []
