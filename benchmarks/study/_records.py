"""The study's records: one JSON line per finished cell, appended atomically.

Why one JSON-lines file and not one file per cell (`jaxscm.atomic_write`): the full
profiles hold thousands of cells, and one file per study and profile is what a reader
greps, diffs and commits. Each record is serialised first and written with a single
``os.write`` on an ``O_APPEND`` descriptor, then fsync'ed: appends of one process never
interleave, a reader never sees half a record of a live writer, and an exclusive
``flock`` keeps a second grid off the same file. A kill (or power cut) in the middle
of that one write can still leave a truncated last line; `read_records` detects it,
and any other damage (a line that is not JSON, a record whose ``record_sha256`` does
not match its content, a missing field, a cell recorded twice, records of other
settings) and raises `RecordError` naming the file, the line and the fix. Nothing is
ever silently skipped or repaired.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FORMAT = "causalmixft-study-record/1"
REQUIRED = ("format", "key", "cell", "status", "settings_sha256", "record_sha256")
# Fields that differ between two runs of the same cell (timings, machine state).
VOLATILE = ("timing", "machine", "written_utc", "record_sha256")


class RecordError(ValueError):
    """A records file is truncated, corrupted or from other settings."""


def record_sha256(record: dict[str, Any]) -> str:
    """sha256 of the record's canonical JSON without its ``record_sha256`` field."""
    body = {k: v for k, v in record.items() if k != "record_sha256"}
    blob = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def _fix(path: Path, line: int) -> str:
    return (
        f"delete line {line} of {path} (sed -i '{line}d' {path}); the grid reruns "
        "that cell on the next start"
    )


def _parse(path: Path, i: int, raw: bytes, last: bool) -> dict[str, Any]:
    if last and not raw.endswith(b"\n"):
        raise RecordError(
            f"{path}, line {i}: truncated record (the last line has no newline: the "
            f"grid was killed while writing it); {_fix(path, i)}"
        )
    try:
        rec = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RecordError(
            f"{path}, line {i}: not a JSON record ({err}); {_fix(path, i)}"
        ) from None
    missing = [k for k in REQUIRED if not isinstance(rec, dict) or k not in rec]
    if missing:
        raise RecordError(
            f"{path}, line {i}: record lacks {', '.join(missing)}; {_fix(path, i)}"
        )
    if rec["format"] != FORMAT:
        raise RecordError(
            f"{path}, line {i}: format {rec['format']!r}, expected {FORMAT!r}; "
            "write this grid to another --out folder"
        )
    if record_sha256(rec) != rec["record_sha256"]:
        raise RecordError(
            f"{path}, line {i}: corrupted record for {rec['key']} (its content does "
            f"not match its record_sha256); {_fix(path, i)}"
        )
    return rec


def read_records(
    path: str | os.PathLike[str], settings_sha256: str | None = None
) -> list[dict[str, Any]]:
    """Every record of a records file, validated (a missing file: none).

    Args:
      path: the JSON-lines file.
      settings_sha256: when given, every record must carry this settings hash.

    Returns:
      The records in file order.

    Raises:
      RecordError: a truncated or corrupted line, a cell recorded twice, or a
        record of other settings; the message names the file, the line and the fix.
    """
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_bytes().splitlines(keepends=True)
    out: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(lines, start=1):
        if not raw.strip():
            raise RecordError(f"{path}, line {i}: empty line; {_fix(path, i)}")
        rec = _parse(path, i, raw, last=i == len(lines))
        if rec["key"] in seen:
            raise RecordError(
                f"{path}, lines {seen[rec['key']]} and {i}: cell {rec['key']} is "
                f"recorded twice; {_fix(path, i)}"
            )
        if settings_sha256 is not None and rec["settings_sha256"] != settings_sha256:
            raise RecordError(
                f"{path}, line {i}: record of other fine-tuning settings (settings "
                f"hash {rec['settings_sha256'][:12]}, this profile's "
                f"{settings_sha256[:12]}); write to another --out folder or move "
                f"{path} away"
            )
        seen[rec["key"]] = i
        out.append(rec)
    return out


class RecordWriter:
    """Appends records to one file; holds an exclusive lock while open."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise RecordError(
                f"{self.path} is being written by another grid (it holds the lock); "
                "wait for it or use another --out folder"
            ) from None

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Seals `record` with its sha256, appends it as one line, returns it sealed."""
        rec = dict(record, format=FORMAT)
        rec["record_sha256"] = record_sha256(rec)
        line = (json.dumps(rec, sort_keys=True, allow_nan=False) + "\n").encode()
        written = os.write(self._fd, line)
        if written != len(line):  # a full disk; the reader reports the partial line
            raise OSError(f"short write to {self.path}: {written} of {len(line)} bytes")
        os.fsync(self._fd)
        return rec

    def close(self) -> None:
        """Releases the lock and closes the file."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@contextlib.contextmanager
def record_writer(path: str | os.PathLike[str]) -> Iterator[RecordWriter]:
    """A `RecordWriter` closed on exit."""
    w = RecordWriter(path)
    try:
        yield w
    finally:
        w.close()


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """The record without the fields that differ between runs (timings, machine)."""
    return {k: v for k, v in record.items() if k not in VOLATILE}
