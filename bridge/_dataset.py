"""Sharded Parquet datasets: K part files plus a manifest, any shard on any machine.

A dataset folder holds ``part-00000.parquet`` ... (the rows, in order), one record per
written shard in ``_shards/`` and, once every shard is there, ``_manifest.json``.
Names starting with ``_`` or ``.`` are skipped by Parquet readers, so
``pandas.read_parquet(folder)`` reads the rows alone.

Why any split gives the same rows: the rows are `write_samples`' rows. Block b is rows
[b * block, (b + 1) * block) and draws with ``fold_in(key, b)``; shards own whole
blocks (shard s: blocks [s * B // K, (s + 1) * B // K) of the B blocks), so a row
depends only on (model, key, block size, its global index), never on K or on which
process wrote it, and concatenating the parts gives the single-file output of
``causalmixft sample ... -o file.parquet --chunk block`` row for row.

Each shard file and its record appear atomically (`jaxscm.atomic_write`); the
manifest is written last. A rerun keeps shards whose file matches its record,
rewrites missing or damaged ones, and refuses (changing nothing) when the folder
holds a run of another model, key, row count, block size, shard count or member.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax

from bridge._classes import ClassPlan, target_of
from bridge._table import write_blocks
from jaxscm import atomic_write
from jaxscm._atomic import remove_stale

FORMAT = "causalmixft-dataset"
VERSION = 1
MANIFEST = "_manifest.json"
RECORDS = "_shards"
ROWS_RULE = (
    "block b = rows [b*block_rows, min((b+1)*block_rows, rows)): the first rows of "
    "jaxscm.sample(jax.random.fold_in(key, b), model, per) - for an ensemble without "
    "member, per = ceil(block_rows/k) rows per member interleaved (row r from member "
    "r mod k); with member, that member's rows - decoded to the table's labels; "
    "shard s holds blocks [s*B//n_shards, (s+1)*B//n_shards) of the B blocks"
)
# How the part files are encoded (their bytes depend on it, the values do not).
PARQUET = {
    "compression": "snappy",
    "dictionary": "categorical columns only",
    "row_group": "one per block",
}
OPTIONAL = ("do", "classes")  # identity keys present only when set
_TMP = re.compile(r"\..+\.\d+\.(tmp|old)")


def shard_name(i: int, shards: int) -> str:
    """File name of shard `i` of `shards`: ``part-00003.parquet``."""
    return f"part-{i:0{max(5, len(str(shards - 1)))}d}.parquet"


def plan(n: int, chunk: int, shards: int) -> list[tuple[int, int]]:
    """The block range [b0, b1) of each shard (blocks of min(chunk, n) rows)."""
    block = min(chunk, n)
    n_blocks = -(-n // block)
    if not 1 <= shards <= n_blocks:
        raise ValueError(
            f"--shards {shards}: {n} rows make {n_blocks} blocks of {block} rows "
            f"(--chunk) and each shard needs at least one; use --shards between 1 "
            f"and {n_blocks}, or a smaller --chunk"
        )
    return [
        (s * n_blocks // shards, (s + 1) * n_blocks // shards) for s in range(shards)
    ]


def identity(
    key: jax.Array,
    model: Any,
    n: int,
    chunk: int,
    shards: int,
    member: int | None,
    model_sha256: str,
    *,
    do: dict[str, Any] | None = None,
    classes: ClassPlan | None = None,
) -> dict[str, Any]:
    """What the rows depend on (plus the split): a rerun must match it exactly.

    `do` (the interventions, as `do_record` gives them) and `classes` appear only
    when set, so a plain run's identity is what it was before they existed.
    """
    out = {
        "format": FORMAT,
        "version": VERSION,
        "rows_rule": ROWS_RULE,
        "columns": [
            {
                "name": c.name,
                "kind": c.kind,
                "categories": list(c.categories),
                "is_target": c.is_target,
            }
            for c in model.columns
        ],
        "model_sha256": model_sha256,
        "key": {
            "impl": str(jax.random.key_impl(key)),
            "data": [int(v) for v in jax.random.key_data(key).ravel()],
        },
        "rows": n,
        "block_rows": min(chunk, n),
        "member": member,
        "n_shards": shards,
        "parquet": PARQUET,
    }
    if do:
        out["do"] = do
    if classes is not None:
        out["classes"] = classes.record()
    return out


def do_record(model: Any, do: dict[str, Any] | None) -> dict[str, Any] | None:
    """The interventions as JSON: a category's label, else the number held.

    `model` is the model before the intervention; the names must be its columns
    (`bridge._table.generation` checks them).
    """
    if not do:
        return None
    from jaxscm._do import node_value

    cols = {c.name: c for c in model.columns}
    out: dict[str, Any] = {}
    for name, value in sorted(do.items()):
        v = node_value(cols[name], value)
        out[name] = cols[name].categories[int(v)] if cols[name].categories else v
    return out


def class_plan(want: dict[str, Any], model: Any) -> ClassPlan | None:
    """The class plan a dataset's identity records (None: no class request)."""
    if "classes" not in want:
        return None
    target, _ = target_of(model)
    classes = model.columns[target].categories
    return ClassPlan.from_record(want["classes"], classes, want["block_rows"])


def model_digest(model: Any) -> str:
    """sha256 of a model's arrays and structure (when no model file is given)."""
    leaves, treedef = jax.tree.flatten(model)
    h = hashlib.sha256(str(treedef).encode("utf-8"))
    for leaf in leaves:
        a = jax.device_get(leaf)
        h.update(f"{getattr(a, 'dtype', '')}{getattr(a, 'shape', '')}".encode())
        h.update(memoryview(a).tobytes() if hasattr(a, "tobytes") else repr(a).encode())
    return h.hexdigest()


def file_sha(path: Path) -> str:
    """sha256 of a file's bytes (read in blocks)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def record_sha(record: dict[str, Any]) -> str:
    """sha256 of a JSON record less its own ``sha256`` field (as `jaxscm.save_fit`)."""
    body = {k: v for k, v in record.items() if k != "sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _dump(path: Path, record: dict[str, Any]) -> None:
    record = {**record, "sha256": record_sha(json.loads(json.dumps(record)))}
    with atomic_write(path, "w") as f:
        f.write(json.dumps(record, indent=1))


def read_record(path: Path) -> dict[str, Any]:
    """A manifest or shard record, checked against its own checksum.

    Raises:
      ValueError: naming the file, when it is not JSON or fails its checksum.
    """
    try:
        record = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not a readable JSON record ({err})") from err
    if not isinstance(record, dict) or record.get("sha256") != record_sha(record):
        raise ValueError(f"{path} fails its checksum (edited or corrupted)")
    return record


def _differences(found: dict[str, Any], want: dict[str, Any]) -> list[str]:
    out = []
    # an option only one of the runs set (do, classes) is a difference too
    for k in [*want, *(k for k in OPTIONAL if k not in want)]:
        if found.get(k) != want.get(k):
            a, b = json.dumps(found.get(k)), json.dumps(want.get(k))
            a, b = (
                (a if len(a) < 80 else a[:77] + "..."),
                (b if len(b) < 80 else b[:77] + "..."),
            )
            out.append(f"{k}: folder {a}, this run {b}")
    return out


def check_folder(path: Path, want: dict[str, Any]) -> None:
    """Refuses a folder holding another run's dataset, or files of no dataset.

    Reads only; raises before anything is written.

    Raises:
      ValueError: naming the folder and what differs (model, key, rows, ...), or
        naming a file that is no part of a dataset.
      NotADirectoryError: `path` is a file.
    """
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path} is a file; --shards writes a folder")
    if not path.exists():
        if not path.parent.is_dir():
            raise ValueError(
                f"directory {str(path.parent)!r} for {path.name!r} does not exist; "
                "create it first"
            )
        return
    records = [path / MANIFEST] + sorted((path / RECORDS).glob("part-*.json"))
    for rec in records:
        if not rec.is_file():
            continue
        try:
            found = read_record(rec)
        except ValueError as err:
            if rec.name == MANIFEST:
                raise ValueError(
                    f"{err}; nothing was changed - delete {rec} to rebuild it from "
                    f"the shard records, or write to a new folder"
                ) from err
            continue  # a damaged shard record: that shard is rewritten
        found = found.get("identity", found)
        diff = _differences(found, want)
        if diff:
            raise ValueError(
                f"{path} holds a dataset of another run ({rec.name}: "
                + "; ".join(diff)
                + "); nothing was changed - write to a new folder, or delete it "
                "to start afresh"
            )
    names = {shard_name(i, want["n_shards"]) for i in range(want["n_shards"])}
    for entry in path.iterdir():
        if entry.name in names | {MANIFEST, RECORDS} or _TMP.fullmatch(entry.name):
            continue
        raise ValueError(
            f"{path} holds {entry.name!r}, which is no part of a "
            f"{want['n_shards']}-shard dataset; nothing was changed - write to an "
            "empty or new folder"
        )


def write_shard(
    path: Path,
    key: jax.Array,
    model: Any,
    want: dict[str, Any],
    blocks: tuple[int, int],
    i: int,
) -> tuple[dict[str, Any], str]:
    """Writes shard `i` unless its file matches its record; returns (entry, action).

    `action` is "kept", or "wrote" with why ("missing", "damaged", ...).
    """
    n, block, member = want["rows"], want["block_rows"], want["member"]
    name = shard_name(i, want["n_shards"])
    part, rec = path / name, path / RECORDS / name.replace(".parquet", ".json")
    remove_stale(part)  # a killed writer's temporary file (dead pid only)
    remove_stale(rec)
    rows = [blocks[0] * block, min(blocks[1] * block, n)]
    why = "missing"
    if part.is_file() and rec.is_file():
        try:
            old = read_record(rec)
            entry = old["shard"]
            ok = (
                old["identity"] == want
                and entry["file"] == name
                and entry["rows"] == rows
                and entry["bytes"] == part.stat().st_size
                and entry["sha256"] == file_sha(part)
            )
            if ok:
                return entry, "kept"
            why = "damaged (its checksum differs from its record)"
        except (ValueError, KeyError, TypeError):
            why = "unrecorded (its record is damaged)"
    elif part.is_file():
        why = "unrecorded (the writer stopped before its record)"
    (path / RECORDS).mkdir(exist_ok=True)
    with atomic_write(part, "wb") as f:
        written = write_blocks(
            f,
            "parquet",
            key,
            model,
            n,
            block,
            range(*blocks),
            member,
            part,
            dictionary_numbers=False,
            classes=class_plan(want, model),
        )
    assert written == rows[1] - rows[0], (written, rows)
    entry = {
        "file": name,
        "rows": rows,
        "n_rows": written,
        "bytes": part.stat().st_size,
        "sha256": file_sha(part),
    }
    _dump(rec, {"identity": want, "shard": entry})
    return entry, f"wrote ({why})"


def finish(path: Path, want: dict[str, Any]) -> Path | None:
    """Writes the manifest once every shard has its record; None while some lack one.

    A record counts when it matches this run and its file has the recorded size (each
    writer hashed its own file; `verify_dataset` rehashes them all).
    """
    entries = []
    for i in range(want["n_shards"]):
        name = shard_name(i, want["n_shards"])
        rec = path / RECORDS / name.replace(".parquet", ".json")
        try:
            entry = read_record(rec)["shard"]
        except (ValueError, KeyError):
            return None
        part = path / name
        if not part.is_file() or part.stat().st_size != entry["bytes"]:
            return None
        entries.append(entry)
    remove_stale(path / MANIFEST)
    _dump(path / MANIFEST, {**want, "shards": entries})
    return path / MANIFEST


def verify_dataset(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Checks a dataset folder against its manifest, rehashing every shard.

    Args:
      path: a folder written by `write_dataset`.

    Returns:
      The manifest (format, columns, model_sha256, key, rows, block_rows, n_shards,
      shards: file, rows [start, stop), n_rows, bytes, sha256).

    Raises:
      FileNotFoundError: no manifest (the run has not finished: rerun it).
      ValueError: naming the file: a manifest that fails its checksum or does not
        tile the rows, or a shard that is missing or differs from the manifest.
    """
    path = Path(path)
    if not (path / MANIFEST).is_file():
        raise FileNotFoundError(
            f"{path} has no {MANIFEST}: not a dataset folder, or its run has not "
            "finished (rerun the same command to complete it)"
        )
    man = read_record(path / MANIFEST)
    shards: Sequence[dict[str, Any]] = man.get("shards", [])
    starts = [s["rows"][0] for s in shards] + [man.get("rows")]
    if (
        len(shards) != man.get("n_shards")
        or starts[0] != 0
        or any(s["rows"][1] != starts[j + 1] for j, s in enumerate(shards))
    ):
        raise ValueError(f"{path / MANIFEST}: its shards do not tile the rows")
    for s in shards:
        part = path / s["file"]
        if not part.is_file():
            raise ValueError(f"{part} is missing; rerun the command to rewrite it")
        if part.stat().st_size != s["bytes"] or file_sha(part) != s["sha256"]:
            raise ValueError(
                f"{part} differs from {MANIFEST} (edited or corrupted); rerun the "
                "command to rewrite it"
            )
    return man
