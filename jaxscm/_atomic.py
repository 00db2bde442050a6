"""Atomic writes: a file or a folder appears complete or not at all.

Every writer in the project (model files, Parquet/CSV samples, checkpoints, reports,
pre-training state, benchmark results) goes through the two context managers here,
so the temp-file-then-`os.replace` idiom is written once. Standard library only, so
the pure core can use it.

The temporary entry is `.{name}.{pid}.tmp` next to the target: `os.replace` is atomic
only within one file system, and a leading dot keeps it out of globs. It is removed on
any exception, KeyboardInterrupt included, and the target is then left untouched.
A process killed outright (SIGKILL, power loss) cannot clean up; the next write of
the same target removes such leftovers: entries of exactly that naming whose pid is
no running process (`remove_stale`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], mode: str = "wb", **open_kwargs: Any
) -> Iterator[IO[Any]]:
    """Writes a file atomically: a temporary file, fsynced, then renamed over `path`.

    The new file gets the permissions a plain `open()` would give it (0o666 less the
    umask), not `tempfile.mkstemp`'s 0o600. A library that only writes to a file name
    (safetensors, `torch.save` with a path) may write to the yielded file's `name`:
    whatever is at that name when the block ends is synced, given those permissions
    and renamed.

    Args:
      path: the file to write; its folder is created if needed.
      mode: "wb" (bytes) or "w" (text); "x" and "a" make no sense for a new file.
      **open_kwargs: passed to `open` (`encoding`, `newline`, ...).

    Yields:
      The open temporary file.

    Raises:
      ValueError: `mode` is not a write mode.

    Examples:
      >>> import os, tempfile
      >>> path = os.path.join(tempfile.mkdtemp(), "a.txt")
      >>> with atomic_write(path, "w") as f:
      ...     _ = f.write("hello")
      >>> Path(path).read_text()
      'hello'
    """
    if mode not in ("w", "wb", "w+", "wb+", "w+b"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', not {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    remove_stale(path)
    tmp.unlink(missing_ok=True)  # a leftover of a killed process with our pid
    # os.open applies the umask to 0o666, exactly as open() does.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        perms = os.fstat(fd).st_mode & 0o777
        os.close(fd)
        # Reopened by name so that `f.name` is the path a name-only writer needs.
        with open(tmp, mode, **open_kwargs) as f:
            yield f
        _finish_file(tmp, perms)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_dir(path.parent)


@contextlib.contextmanager
def atomic_directory(
    path: str | os.PathLike[str], *, replace: bool = False
) -> Iterator[Path]:
    """Builds a folder atomically: fill the yielded temporary folder, it is renamed.

    A reader never sees a half-written folder: either the previous one (or nothing)
    or the complete new one. Every file inside is fsynced and gets the permissions a
    plain `open()` / `mkdir()` would give it (0o666 / 0o777 less the umask).

    Args:
      path: the folder to create; its parent is created if needed.
      replace: replace an existing non-empty folder. The old one is moved aside,
        the new one renamed in, and the old one removed; if the rename fails the old
        one is put back. An empty existing folder is always replaced.

    Yields:
      The temporary folder, empty.

    Raises:
      FileExistsError: `path` exists and is a file, or a non-empty folder and
        `replace` is False.

    Examples:
      >>> import os, tempfile
      >>> path = os.path.join(tempfile.mkdtemp(), "run")
      >>> with atomic_directory(path) as tmp:
      ...     _ = (tmp / "a.txt").write_text("hello")
      >>> sorted(os.listdir(path))
      ['a.txt']
    """
    path = Path(path)
    _check_directory_target(path, replace)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    remove_stale(path)
    shutil.rmtree(tmp, ignore_errors=True)  # a leftover of a killed process
    os.mkdir(tmp, 0o777)  # umask applies, as for mkdir
    old = None
    try:
        dir_perms = os.stat(tmp).st_mode & 0o777
        yield tmp
        _finish_tree(tmp, dir_perms)
        _check_directory_target(path, replace)  # it may have appeared meanwhile
        if path.is_dir() and any(path.iterdir()):
            old = path.with_name(f".{path.name}.{os.getpid()}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)  # over an empty folder or nothing
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not path.exists():
            os.replace(old, path)
            old = None
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    _sync_dir(path.parent)


def remove_stale(path: str | os.PathLike[str]) -> list[Path]:
    """Removes the temporary entries that killed writers of `path` left behind.

    Only entries named exactly as this module names them (``.{name}.{pid}.tmp`` and
    ``.{name}.{pid}.old`` next to `path`) whose pid is no running process are
    removed; a live writer's entry and anything else are left alone.

    Args:
      path: the target file or folder.

    Returns:
      The entries removed.

    Examples:
      >>> import os, tempfile
      >>> folder = tempfile.mkdtemp()
      >>> stale = Path(folder, ".a.txt.999999999.tmp")
      >>> _ = stale.write_text("half")
      >>> [p.name for p in remove_stale(Path(folder, "a.txt"))]
      ['.a.txt.999999999.tmp']
    """
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.(tmp|old)")
    removed = []
    try:
        entries = list(path.parent.iterdir())
    except OSError:  # no folder yet, or unreadable: nothing of ours to clean
        return removed
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if m is None or _alive(int(m.group(1))):
            continue
        if m.group(2) == "old" and not path.exists():
            continue  # the only copy of a folder whose replacement was cut off
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
        removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # our own name: the writer itself replaces it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # another user's process, or not checkable: leave it
    return True


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _check_directory_target(path: Path, replace: bool) -> None:
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a folder; not replacing it")
    if not replace and path.is_dir() and any(path.iterdir()):
        raise FileExistsError(f"{path} exists and is not empty; choose a new folder")


def _finish_file(tmp: Path, perms: int) -> None:
    # Reopened by name: a writer may have replaced the file we created.
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    if os.stat(tmp).st_mode & 0o777 != perms:
        os.chmod(tmp, perms)


def _finish_tree(root: Path, dir_perms: int) -> None:
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            os.chmod(os.path.join(folder, name), dir_perms)
        for name in files:
            _finish_file(Path(folder, name), dir_perms & 0o666)


def _sync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not every platform can open a folder.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
