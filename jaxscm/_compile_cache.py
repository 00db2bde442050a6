"""JAX's persistent compilation cache, switched on by the program's edges.

Compiling a fitted ensemble's sampler takes seconds to tens of seconds on a CPU; JAX
can keep compiled programs on disk so that the next process with the same program
(the same model structure, n and dtypes, and the same JAX version) loads it instead.
Library code never changes global JAX configuration on import: the command line, the
estimator's `fit` and the benchmarks call `enable_compilation_cache()` themselves.

Where: `$CAUSALMIXFT_JAX_CACHE` if set (``0``, ``off``, ``false`` or ``no`` turns the
cache off), else `$XDG_CACHE_HOME/causalmixft/jax`, else `~/.cache/causalmixft/jax`.
A damaged or unreadable entry is not an error: JAX warns and compiles afresh.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import jax

#: The environment variable that moves (or, with ``0``/``off``, disables) the cache.
CACHE_ENV = "CAUSALMIXFT_JAX_CACHE"
_OFF = frozenset({"0", "off", "false", "no", "none"})


def compilation_cache_dir() -> Path | None:
    """The per-user compilation cache folder, or None when it is switched off.

    Returns:
      `$CAUSALMIXFT_JAX_CACHE` (None for ``0``/``off``/``false``/``no``), else
      `$XDG_CACHE_HOME/causalmixft/jax`, else `~/.cache/causalmixft/jax`.

    Examples:
      >>> folder = compilation_cache_dir()  # e.g. ~/.cache/causalmixft/jax
      >>> folder is None or isinstance(folder, Path)
      True
    """
    value = os.environ.get(CACHE_ENV, "").strip()
    if value.lower() in _OFF:
        return None
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    root = Path(base).expanduser() if base else Path.home() / ".cache"
    return root / "causalmixft" / "jax"


def enable_compilation_cache(
    path: str | os.PathLike[str] | None = None, *, min_compile_time_s: float = 0.2
) -> Path | None:
    """Points JAX's persistent compilation cache at a folder (for the program's edges).

    Changes global JAX configuration, so only entry points (CLI, estimator,
    benchmarks) call it; `import jaxscm` does not. Safe to call more than once, also
    after something has been compiled.

    Args:
      path: the folder; default `compilation_cache_dir()` (the environment's choice,
        which may be off).
      min_compile_time_s: programs that compile faster than this are not stored.

    Returns:
      The folder in use, or None when the cache is off or the folder cannot be
      created (then with a warning; compiling still works, just uncached).

    Examples:
      >>> import tempfile
      >>> enable_compilation_cache(tempfile.mkdtemp()).is_dir()
      True
    """
    folder = compilation_cache_dir() if path is None else Path(path).expanduser()
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        warnings.warn(
            f"JAX compilation cache off: cannot create {folder} ({err}); set "
            f"{CACHE_ENV} to a writable folder, or to 0 to silence this",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    if (
        jax.config.jax_compilation_cache_dir == str(folder)
        and jax.config.jax_persistent_cache_min_compile_time_secs == min_compile_time_s
    ):
        return folder
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_time_s)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    # JAX decides once per process, at its first compilation, whether a cache is in
    # use; resetting makes a folder set after that first compilation take effect.
    from jax.experimental.compilation_cache import compilation_cache as cc

    cc.reset_cache()
    return folder
