"""`jaxscm.atomic_write` / `atomic_directory`: all or nothing, umask permissions."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from jaxscm import atomic_directory, atomic_write


class _Boom(Exception):
    pass


def _umask(mask: int):
    old = os.umask(mask)
    return lambda: os.umask(old)


def _write_then_fail(path: Path, error: type[BaseException]) -> None:
    with atomic_write(path, "w") as f:
        f.write("half")
        raise error


def _fill_then_fail(path: Path, error: type[BaseException], **kw: bool) -> None:
    with atomic_directory(path, **kw) as tmp:
        (tmp / "new.txt").write_text("new")
        raise error


def test_atomic_write__content_appears_only_when_the_block_ends(tmp_path):
    path = tmp_path / "sub" / "a.bin"
    with atomic_write(path) as f:
        f.write(b"abc")
        assert not path.exists()  # nothing visible while writing
        assert Path(f.name).name == f".a.bin.{os.getpid()}.tmp"
        assert Path(f.name).parent == path.parent
    assert path.read_bytes() == b"abc"
    assert os.listdir(path.parent) == ["a.bin"]


def test_atomic_write__text_mode_replaces_the_old_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with atomic_write(path, "w") as f:
        f.write("new")
    assert path.read_text() == "new"


@pytest.mark.parametrize("error", [_Boom, KeyboardInterrupt])
def test_atomic_write__exception_keeps_the_old_file_and_no_temp_file(tmp_path, error):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(error):
        _write_then_fail(path, error)
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600)])
def test_atomic_write__permissions_follow_the_umask(tmp_path, mask, expected):
    restore = _umask(mask)
    try:
        with atomic_write(tmp_path / "a.bin") as f:
            f.write(b"x")
        plain = tmp_path / "plain.bin"
        plain.write_bytes(b"x")
    finally:
        restore()
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == expected
    assert plain.stat().st_mode & 0o777 == expected


def test_atomic_write__a_writer_that_replaces_the_name_gets_umask_permissions(
    tmp_path,
):
    # safetensors writes by file name and leaves a 0o600 file; the helper fixes it.
    from safetensors.numpy import save_file

    restore = _umask(0o022)
    try:
        with atomic_write(tmp_path / "w.safetensors") as f:
            save_file({"a": np.arange(3.0)}, f.name)
    finally:
        restore()
    from safetensors.numpy import load_file

    assert (tmp_path / "w.safetensors").stat().st_mode & 0o777 == 0o644
    np.testing.assert_array_equal(load_file(tmp_path / "w.safetensors")["a"], [0, 1, 2])


def test_atomic_write__rejects_a_non_write_mode(tmp_path):
    with pytest.raises(ValueError, match="mode"), atomic_write(tmp_path / "a", "a"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_atomic_directory__folder_appears_complete(tmp_path):
    path = tmp_path / "model"
    with atomic_directory(path) as tmp:
        (tmp / "a.txt").write_text("a")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.txt").write_text("b")
        assert not path.exists()
    assert (path / "a.txt").read_text() == "a"
    assert (path / "sub" / "b.txt").read_text() == "b"
    assert os.listdir(tmp_path) == ["model"]


@pytest.mark.parametrize("error", [_Boom, KeyboardInterrupt])
def test_atomic_directory__exception_never_leaves_a_half_written_folder(
    tmp_path, error
):
    path = tmp_path / "model"
    with pytest.raises(error):
        _fill_then_fail(path, error)
    assert os.listdir(tmp_path) == []


def test_atomic_directory__failed_replace_keeps_the_old_folder(tmp_path):
    path = tmp_path / "model"
    path.mkdir()
    (path / "old.txt").write_text("old")
    with pytest.raises(_Boom):
        _fill_then_fail(path, _Boom, replace=True)
    assert os.listdir(path) == ["old.txt"]
    assert os.listdir(tmp_path) == ["model"]


def test_atomic_directory__replace_swaps_the_whole_folder(tmp_path):
    path = tmp_path / "model"
    path.mkdir()
    (path / "old.txt").write_text("old")
    with atomic_directory(path, replace=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert os.listdir(path) == ["new.txt"]
    assert os.listdir(tmp_path) == ["model"]


def test_atomic_directory__refuses_a_non_empty_folder_without_replace(tmp_path):
    path = tmp_path / "model"
    path.mkdir()
    (path / "old.txt").write_text("old")
    with (
        pytest.raises(FileExistsError, match="not empty"),
        atomic_directory(path) as tmp,
    ):
        (tmp / "new.txt").write_text("new")
    assert os.listdir(path) == ["old.txt"]
    assert os.listdir(tmp_path) == ["model"]


def test_atomic_directory__empty_existing_folder_is_replaced(tmp_path):
    (tmp_path / "model").mkdir()
    with atomic_directory(tmp_path / "model") as tmp:
        (tmp / "a.txt").write_text("a")
    assert os.listdir(tmp_path / "model") == ["a.txt"]


def test_atomic_directory__permissions_follow_the_umask(tmp_path):
    from safetensors.numpy import save_file

    restore = _umask(0o027)
    try:
        with atomic_directory(tmp_path / "model") as tmp:
            (tmp / "a.txt").write_text("a")
            save_file({"a": np.zeros(2)}, str(tmp / "w.safetensors"))  # 0o600
    finally:
        restore()
    assert (tmp_path / "model").stat().st_mode & 0o777 == 0o750
    assert (tmp_path / "model" / "a.txt").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "model" / "w.safetensors").stat().st_mode & 0o777 == 0o640
