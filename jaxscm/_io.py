"""Saving and loading models as arrays plus JSON, never pickle.

A model file is one `.npz` archive. Its arrays are the model's leaves; one extra
uint8 array, `__jaxscm__`, holds UTF-8 JSON with the format version, the tree of
registered classes with their static fields, and the dtype, shape and sha256 of every
array. Loading rebuilds only classes registered in `jaxscm` (by name), re-runs their
constructors (so every invariant, acyclicity included, is checked again) and refuses
files whose version, shapes or hashes do not match.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxscm._atomic import atomic_write
from jaxscm._pytree import REGISTRY, to_device
from jaxscm._schema import Column
from jaxscm._validate import check_parameters

FORMAT = "jaxscm"
FORMAT_VERSION = 1
_META_KEY = "__jaxscm__"


class FormatError(ValueError):
    """A model file that is not a valid jaxscm file: corrupted, truncated, tampered
    with, or written by an incompatible version."""


def save(path: str | os.PathLike[str], model: Any) -> Path:
    """Writes a model (an `SCM`, an ensemble, or any registered jaxscm PyTree).

    The write is atomic: the data goes to a temporary file in the same folder, which
    is renamed over `path` only once complete, so an interrupted save leaves no
    partial file under the target name.

    Args:
      path: the file to write; ".npz" is appended if it has no suffix.
      model: the model.

    Returns:
      The path written.

    Examples:
      >>> import jax, tempfile, os
      >>> from jaxscm import random_scm
      >>> d = tempfile.mkdtemp()
      >>> save(os.path.join(d, "m.npz"), random_scm(jax.random.key(0), 3)).name
      'm.npz'
    """
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".npz")
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(model, "a", arrays)
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "tree": tree,
        "arrays": {
            k: {"dtype": str(v.dtype), "shape": list(v.shape), "sha256": _sha(v)}
            for k, v in arrays.items()
        },
    }
    blob = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    with atomic_write(path) as f:
        np.savez(f, **arrays, **{_META_KEY: blob})
    return path


def load(path: str | os.PathLike[str]) -> Any:
    """Reads a model written by `save`.

    Args:
      path: the file.

    Returns:
      The model, with jax arrays as leaves.

    Raises:
      FileNotFoundError: no such file (`path` without a suffix also finds the
        ".npz" file `save` wrote for it).
      FormatError: the file is corrupted, truncated, of another format or version,
        declares sizes its arrays do not have, or describes an invalid model or
        non-finite parameters (the message names the check, node and field).

    Examples:
      >>> import jax, tempfile, os
      >>> from jaxscm import random_scm
      >>> scm = random_scm(jax.random.key(0), 3)
      >>> p = save(os.path.join(tempfile.mkdtemp(), "m"), scm)
      >>> load(p).nodes
      ('x0', 'x1', 'x2')
    """
    path = _model_path(Path(path))
    meta = _read_meta(path)
    try:
        # Open the file ourselves: np.load leaks its handle when the archive is bad.
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:
            contents = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as err:
        raise FormatError(
            f"{path} is not a readable jaxscm model file "
            f"(corrupted or truncated?): {err}"
        ) from err
    contents.pop(_META_KEY, None)
    described = meta["arrays"]
    if set(described) != set(contents):
        raise FormatError(
            f"{path}: arrays {sorted(set(contents) ^ set(described))} are missing or "
            f"unexpected"
        )
    for k, info in described.items():
        v = contents[k]
        if str(v.dtype) != info["dtype"] or list(v.shape) != info["shape"]:
            raise FormatError(
                f"{path}: array {k} is {v.dtype}{list(v.shape)}, metadata says "
                f"{info['dtype']}{info['shape']}"
            )
        if _sha(v) != info["sha256"]:
            raise FormatError(f"{path}: array {k} fails its checksum (corrupted file)")
    try:
        model = _decode(meta["tree"], contents)
        check_parameters(model)
    except FormatError as err:
        raise FormatError(f"{path}: {err}") from err
    except RecursionError as err:
        raise FormatError(f"{path}: the model tree is nested too deeply") from err
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as err:
        raise FormatError(f"{path}: describes an invalid model: {err}") from err
    return model


# Bounds checked before anything is decompressed or parsed (a zip bomb or a
# metadata blob of gigabytes is refused from the archive's directory alone).
_MAX_META_BYTES = 64 << 20
_MAX_JSON_DEPTH = 200
_NPY_HEADER_SLACK = 1 << 16  # an .npy header is 128 bytes; generous for safety


def _model_path(path: Path) -> Path:
    """The file `save(path)` wrote: `save("m")` writes m.npz; `load("m")` reads it."""
    if path.is_file():
        return path
    if not path.suffix and path.with_suffix(".npz").is_file():
        return path.with_suffix(".npz")
    if path.is_dir():
        hint = (
            "; it is a model directory - use jaxscm.load_fit"
            if (path / "model.npz").is_file()
            else ""
        )
        raise FileNotFoundError(f"{path} is a folder, not a jaxscm model file{hint}")
    raise FileNotFoundError(
        f"no jaxscm model file at {path}; write one with jaxscm.save"
    )


def _read_meta(path: Path) -> dict[str, Any]:
    """The validated metadata, and every member's size checked against it."""
    unreadable = f"{path} is not a readable jaxscm model file (corrupted or truncated?)"
    try:
        with zipfile.ZipFile(path) as zf:
            members = {i.filename: i for i in zf.infolist()}
            info = members.get(f"{_META_KEY}.npy")
            if info is None:
                raise FormatError(
                    f"{path} has no {_META_KEY} metadata: not a jaxscm model file"
                )
            if info.file_size > _MAX_META_BYTES:
                raise FormatError(
                    f"{path}: metadata of {info.file_size} bytes is over the "
                    f"{_MAX_META_BYTES >> 20} MiB limit; the file is corrupted"
                )
            with zf.open(info) as fh:
                blob = np.lib.format.read_array(fh, allow_pickle=False)
    except FormatError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as err:
        raise FormatError(f"{unreadable}: {err}") from err
    if blob.dtype != np.uint8 or blob.ndim != 1:
        raise FormatError(f"{path}: metadata is not a byte string; not a jaxscm file")
    try:
        text = blob.tobytes().decode("utf-8")
        _check_depth(text, path)
        meta = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise FormatError(f"{path}: metadata is not valid JSON: {err}") from err
    if not isinstance(meta, dict):
        raise FormatError(f"{path}: metadata is not a JSON object")
    if meta.get("format") != FORMAT:
        raise FormatError(
            f"{path}: format is {meta.get('format')!r}, expected {FORMAT!r}"
        )
    if meta.get("version") != FORMAT_VERSION:
        raise FormatError(
            f"{path}: format version {meta.get('version')!r} is not supported by "
            f"this jaxscm (reads version {FORMAT_VERSION}); re-save it with a "
            f"matching version"
        )
    described = meta.get("arrays")
    if not isinstance(described, dict) or "tree" not in meta:
        raise FormatError(f"{path}: metadata lacks its array table or model tree")
    for k, entry in described.items():
        member = members.get(f"{k}.npy")
        if member is None:
            raise FormatError(f"{path}: array {k} is described but missing")
        expected = _declared_bytes(path, k, entry)
        if member.file_size > expected + _NPY_HEADER_SLACK:
            raise FormatError(
                f"{path}: array {k} unpacks to {member.file_size} bytes but its "
                f"metadata declares {expected}; the file is corrupted or tampered with"
            )
    extra = set(members) - {f"{k}.npy" for k in described} - {f"{_META_KEY}.npy"}
    if extra:
        raise FormatError(f"{path}: unexpected members {sorted(extra)} in the archive")
    return meta


def _declared_bytes(path: Path, name: str, entry: Any) -> int:
    bad = FormatError(f"{path}: array {name} has a malformed description {entry!r}")
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
        raise bad
    shape, dtype = entry.get("shape"), entry.get("dtype")
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
        raise bad
    try:
        dt = np.dtype(dtype) if isinstance(dtype, str) else None
    except TypeError:
        dt = None
    if dt is None or dt.kind not in "biuf" or str(dt) != dtype:
        raise bad
    return int(np.prod(shape, dtype=object)) * dt.itemsize


def _check_depth(text: str, path: Path) -> None:
    # json.loads recurses per nesting level; a crafted header would hit Python's
    # recursion limit (a RecursionError traceback). Brackets inside strings count
    # too, which only over-estimates the depth of a legitimate file's short names.
    b = np.frombuffer(text.encode("utf-8"), np.uint8)
    step = np.isin(b, (ord("["), ord("{"))).astype(np.int64)
    step -= np.isin(b, (ord("]"), ord("}")))
    deepest = int(np.cumsum(step).max(initial=0))
    if deepest > _MAX_JSON_DEPTH:
        raise FormatError(
            f"{path}: metadata nests {deepest} levels deep (limit {_MAX_JSON_DEPTH}); "
            f"the file is corrupted or tampered with"
        )


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _encode(obj: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    if type(obj).__name__ in REGISTRY and REGISTRY[type(obj).__name__] is type(obj):
        static, leaves = {}, {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if not f.metadata.get("saved", True):
                continue  # a record with its own file (Ensemble.info: fit.json)
            if f.metadata.get("static", False):
                static[f.name] = _encode_static(value)
            else:
                leaves[f.name] = _encode(value, f"{prefix}.{f.name}", arrays)
        return {"type": type(obj).__name__, "static": static, "leaves": leaves}
    if isinstance(obj, (tuple, list)):
        return {"seq": [_encode(v, f"{prefix}.{i}", arrays) for i, v in enumerate(obj)]}
    if obj is None:
        return None
    if isinstance(obj, (jax.Array, np.ndarray, np.generic, float, int, bool)):
        arr = np.asarray(obj)
        if arr.dtype == object:
            raise TypeError(f"cannot save object array at {prefix}")
        arrays[prefix] = arr
        return {"array": prefix}
    raise TypeError(
        f"cannot save a {type(obj).__name__} at {prefix}: not a jaxscm type"
    )


def _encode_static(value: Any) -> Any:
    if isinstance(value, Column):
        return {"column": value.to_json()}
    if isinstance(value, (tuple, list)):
        return {"seq": [_encode_static(v) for v in value]}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(
        f"cannot save static value {value!r} of type {type(value).__name__}"
    )


def _decode_static(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"column"}:
            return Column.from_json(value["column"])
        if set(value) == {"seq"} and isinstance(value["seq"], list):
            return tuple(_decode_static(v) for v in value["seq"])
        raise FormatError(f"unknown static entry {value!r:.80}")
    if isinstance(value, list):  # save writes sequences as {"seq": [...]}
        raise FormatError(f"unexpected list {value!r:.80} among static fields")
    return value


def _decode(node: Any, arrays: dict[str, np.ndarray], *, batched: bool = False) -> Any:
    if node is None:
        return None
    if not isinstance(node, dict):
        raise FormatError(f"unexpected entry {node!r} in the model tree")
    if "array" in node:
        return to_device(arrays[node["array"]])
    if "seq" in node:
        if set(node) != {"seq"} or not isinstance(node["seq"], list):
            raise FormatError(f"malformed sequence entry {node!r:.80}")
        return tuple(_decode(v, arrays, batched=batched) for v in node["seq"])
    if "type" in node:
        cls = REGISTRY.get(node["type"])
        if cls is None:
            raise FormatError(
                f"unknown model class {node['type']!r}; this jaxscm knows "
                f"{sorted(REGISTRY)}"
            )
        # Fields a class lists in `_batched_fields` hold mechanisms stacked along a
        # leading member axis: single-instance constructors would reject their shapes,
        # so they are rebuilt structurally and the owner validates them as a whole.
        inner = set(getattr(cls, "_batched_fields", ()))
        kwargs = {k: _decode_static(v) for k, v in node.get("static", {}).items()}
        kwargs.update(
            {
                k: _decode(v, arrays, batched=batched or k in inner)
                for k, v in node.get("leaves", {}).items()
            }
        )
        if batched:
            obj = object.__new__(cls)
            for name, value in kwargs.items():
                object.__setattr__(obj, name, value)
            for f in dataclasses.fields(cls):
                # A field added later with a default (TreeEnsemble.words): files
                # written before it load with the default.
                if f.name not in kwargs and f.default is not dataclasses.MISSING:
                    object.__setattr__(obj, f.name, f.default)
                    kwargs[f.name] = f.default
            missing = [f.name for f in dataclasses.fields(cls) if f.name not in kwargs]
            if missing:
                raise FormatError(f"{node['type']} entry lacks fields {missing}")
            return obj
        return cls(**kwargs)
    raise FormatError(f"unexpected entry with keys {sorted(node)} in the model tree")
