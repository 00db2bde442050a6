"""Fuzzing every loader with mutated files: a clear error, never a wrong answer.

``python -m benchmarks.fuzz_files --n 500`` builds small original artefacts (a
random SCM model file, a model directory, a fine-tuned estimator folder, a
fine-tuning checkpoint), mutates copies of them (bit flips, truncation, deleted or
emptied files, JSON edits with checksums recomputed where the format allows, type
swaps, huge shapes, NaN/inf values, deeply nested JSON, zip bombs) and feeds each
through its loader: `jaxscm.load`, `jaxscm.load_fit`, the CLI's ``sample``,
`CausalMixFTClassifier.load` and the checkpoint resume path
(`finetune._checkpoint.load`). Each case is one of

* ``clean``: an error the CLI reports as one line (a ValueError, FileNotFoundError,
  ...) whose message names the file or folder;
* ``unclear``: such an error whose message does not name it;
* ``traceback``: any other exception (a bug);
* ``accepted``: loaded, and the answer equals the original's (same samples, same
  predictions, same weights);
* ``accepted_but_wrong``: loaded with a different answer;
* ``fresh_start``: (checkpoints) no ``state.json`` left, so the run starts afresh
  (the same as a run cut off before its first checkpoint; deterministic, so the
  final model is the one an uninterrupted run gives).

Every case also checks that the loader neither removed nor created files in the
folder (``files_changed``). Results go to ``benchmarks/results/fuzz_files.{json,md}``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results"
META = "__jaxscm__"
USER_ERRORS = (
    ValueError,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    NotImplementedError,
)
_SHARE = {"model_file": 0.3, "model_dir": 0.2, "cli_sample": 0.1, "estimator": 0.25}
# the rest: "checkpoint"
_OUTCOMES = (
    "clean",
    "unclear",
    "traceback",
    "accepted",
    "accepted_but_wrong",
    "fresh_start",
)


# --- the original artefacts --------------------------------------------------------


def build_originals(root: Path) -> dict[str, Any]:
    """Writes the four originals under `root`; returns them with reference answers."""
    import jax

    import bridge
    import jaxscm
    from finetune import CausalMixFTClassifier
    from jaxscm import FitInfo

    key = jax.random.key(0)
    scm = jaxscm.random_scm(key, 5, mechanism="mixed")
    model_file = jaxscm.save(root / "model.npz", scm)

    def member(i: int) -> Any:
        k = jax.random.key(10 + i)
        return jaxscm.random_scm(k, 5, target=True, n_classes=2, edge_prob=0.6)

    ens = jaxscm.stack([member(i) for i in range(2)])
    d = len(ens.columns)
    info = FitInfo(
        columns=ens.columns,
        edge_probs=np.full((d, d), 0.5),
        dags=np.asarray(ens.adjacency, bool),
        mechanisms=({},) * 2,
        timings={},
        missing_rate={},
        dropped_rows=0,
        n_rows=0,
        options={},
    )
    model_dir = jaxscm.save_fit(root / "model_dir", ens.with_info(info))

    truth = member(99)
    df = bridge.to_frame(jaxscm.sample(jax.random.key(1), truth, 60), truth)
    X, y = df.drop(columns="y"), df["y"].astype(str)
    ckpt = root / "checkpoint"
    clf = CausalMixFTClassifier(
        augment="causalmix",
        scm=ens,
        ratio=0.5,
        max_steps=1,
        eval_every=1,
        n_estimators_train=1,
        n_estimators=1,
        random_state=0,
        checkpoint_dir=str(ckpt),
        checkpoint_every=1,
    ).fit(X, y)
    estimator = clf.save(root / "estimator")
    return {
        "model_file": model_file,
        "model_dir": model_dir,
        "estimator": estimator,
        "checkpoint": ckpt,
        "X": X,
        "ref_model_file": _samples(jaxscm.load(model_file)),
        "ref_model_dir": _samples(jaxscm.load_fit(model_dir)),
        "ref_cli": _cli_sample(model_dir, root / "ref.csv"),
        "ref_estimator": clf.predict_proba(X),
        "ref_checkpoint": _checkpoint_answer(ckpt),
    }


def _samples(model: Any) -> np.ndarray:
    import jax

    import jaxscm

    return np.asarray(jaxscm.sample(jax.random.key(7), model, 16))


def _cli_sample(model_dir: Path, out: Path) -> tuple[int, bytes | None, str]:
    """(exit status, the file written or None, stderr) of ``causalmixft sample``."""
    from finetune.cli import main

    err, stdout = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(stdout):
        rc = main(["sample", str(model_dir), "-n", "20", "-o", str(out)])
    return rc, out.read_bytes() if out.exists() else None, err.getvalue().strip()


def _checkpoint_answer(folder: Path) -> Any:
    from finetune import _checkpoint

    ck = _checkpoint.load(folder)
    if ck is None:
        return None
    w = {k: v.numpy().tobytes() for k, v in ck["weights"].items()}
    rest = {k: v for k, v in ck.items() if k not in ("weights", "best", "optimizer")}
    opt = json.dumps(_tensors_to_lists(ck["optimizer"]), sort_keys=True)
    return hashlib.sha256(repr((sorted(w.items()), rest, opt)).encode()).hexdigest()


def _tensors_to_lists(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, dict):
        return {str(k): _tensors_to_lists(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_tensors_to_lists(v) for v in obj]
    return obj


# --- mutations ---------------------------------------------------------------------


def _flip(rng: np.random.Generator, file: Path) -> str:
    data = bytearray(file.read_bytes())
    for _ in range(int(rng.integers(1, 4))):
        i = int(rng.integers(len(data)))
        data[i] ^= 1 << int(rng.integers(8))
    file.write_bytes(bytes(data))
    return f"bit flips in {file.name}"


def _truncate(rng: np.random.Generator, file: Path) -> str:
    data = file.read_bytes()
    file.write_bytes(data[: int(rng.integers(len(data)))])
    return f"truncated {file.name}"


def _delete(rng: np.random.Generator, file: Path) -> str:
    file.unlink()
    return f"deleted {file.name}"


def _garbage(rng: np.random.Generator, file: Path) -> str:
    file.write_bytes(rng.bytes(int(rng.integers(0, 4096))))
    return f"random bytes as {file.name}"


_RAW = (_flip, _flip, _flip, _truncate, _delete, _garbage)

_WEIRD = [None, True, 1.9, -1, 10**12, "1", "", [], {}, [[1]], {"a": 1}, float("nan")]


def _swap_somewhere(rng: np.random.Generator, obj: Any) -> tuple[Any, str]:
    """Replaces one random value deep inside `obj` by a value of another type."""
    paths: list[tuple[Any, ...]] = []

    def walk(o: Any, p: tuple[Any, ...]) -> None:
        paths.append(p)
        if isinstance(o, dict):
            for k, v in o.items():
                walk(v, (*p, k))
        elif isinstance(o, list):
            for i, v in enumerate(o):
                walk(v, (*p, i))

    walk(obj, ())
    path = paths[int(rng.integers(1, len(paths)))] if len(paths) > 1 else ()
    new = _WEIRD[int(rng.integers(len(_WEIRD)))]
    if not path:
        return new, f"whole JSON -> {new!r}"
    target = obj
    for k in path[:-1]:
        target = target[k]
    target[path[-1]] = new
    return obj, f"{'.'.join(map(str, path))} -> {new!r}"


_NEST = "@@nested@@"


def _dumps(obj: Any, depth: int = 0) -> str:
    """json.dumps, with the string `_NEST` replaced by `depth` nested lists (a
    structure Python's json cannot build or write itself)."""
    return json.dumps(obj).replace(f'"{_NEST}"', "[" * depth + "]" * depth)


# model files


def _npz_read(file: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    with np.load(file) as z:
        arrays = {k: z[k] for k in z.files}
    return json.loads(arrays.pop(META).tobytes().decode()), arrays


def _npz_write(
    file: Path, meta: Any, arrays: dict[str, np.ndarray], rehash=True, depth=0
) -> None:
    if rehash and isinstance(meta, dict):
        meta["arrays"] = {
            k: {
                "dtype": str(v.dtype),
                "shape": list(v.shape),
                "sha256": hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest(),
            }
            for k, v in arrays.items()
        }
    blob = np.frombuffer(_dumps(meta, depth).encode(), np.uint8)
    with open(file, "wb") as f:
        np.savez(f, **arrays, **{META: blob})


def mutate_npz(rng: np.random.Generator, file: Path) -> str:
    """One mutation of a jaxscm model file."""
    kind = int(rng.integers(9))
    if kind <= 2:
        return _RAW[int(rng.integers(len(_RAW)))](rng, file)
    meta, arrays = _npz_read(file)
    floats = [k for k, v in arrays.items() if v.dtype.kind == "f"]
    if kind == 3:  # NaN / inf / negative scale, checksum recomputed
        name = floats[int(rng.integers(len(floats)))]
        bad = [np.nan, np.inf, -np.inf][int(rng.integers(3))]
        if "scale" in name and rng.random() < 0.5:
            bad = -1.0
        a = arrays[name].copy()
        a.reshape(-1)[int(rng.integers(max(a.size, 1)))] = bad
        arrays[name] = a
        _npz_write(file, meta, arrays)
        return f"{name} = {bad} (rehashed)"
    if kind == 4:  # type swap in the model tree, checksum recomputed
        meta["tree"], what = _swap_somewhere(rng, meta["tree"])
        _npz_write(file, meta, arrays)
        return f"tree: {what}"
    if kind == 5:  # huge or mismatched declared shape
        name = list(arrays)[int(rng.integers(len(arrays)))]
        _npz_write(file, meta, arrays)
        meta, _ = _npz_read(file)
        meta["arrays"][name]["shape"] = [10**6, 10**6]
        _npz_write(file, meta, arrays, rehash=False)
        return f"declared shape of {name} huge"
    if kind == 6:  # deeply nested JSON
        meta["x"] = _NEST
        _npz_write(file, meta, arrays, depth=int(rng.choice([300, 5000, 200_000])))
        return "deeply nested metadata"
    if kind == 7:  # zip bomb: a member of 200 MB of zeros, deflated
        name = list(arrays)[int(rng.integers(len(arrays)))]
        with zipfile.ZipFile(file, "w", zipfile.ZIP_DEFLATED) as zf:
            for k, v in arrays.items():
                b = io.BytesIO()
                big = np.zeros(200_000_000, np.uint8) if k == name else v
                np.lib.format.write_array(b, big)
                zf.writestr(f"{k}.npy", b.getvalue())
            b = io.BytesIO()
            np.lib.format.write_array(b, np.frombuffer(json.dumps(meta).encode(), "u1"))
            zf.writestr(f"{META}.npy", b.getvalue())
        return f"zip bomb in {name}"
    # parents: non-integer or out-of-range index, checksum recomputed
    seqs = meta["tree"]["static"].get("parents", {}).get("seq", [])
    with_parents = [i for i, s in enumerate(seqs) if s.get("seq")]
    if not with_parents:
        return mutate_npz(rng, file)
    i = with_parents[int(rng.integers(len(with_parents)))]
    value = [1.9, "1", True, -1, 99, None][int(rng.integers(6))]
    seqs[i]["seq"][0] = value
    _npz_write(file, meta, arrays)
    return f"parent of node {i} = {value!r}"


def mutate_model_dir(rng: np.random.Generator, folder: Path) -> str:
    """One mutation of a model directory (model.npz + fit.json)."""
    if rng.random() < 0.5:
        return "model.npz: " + mutate_npz(rng, folder / "model.npz")
    fit = folder / "fit.json"
    kind = int(rng.integers(5))
    if kind <= 1:
        return _RAW[int(rng.integers(len(_RAW)))](rng, fit)
    from jaxscm.fitting._fit_scm import _record_sha

    record = json.loads(fit.read_text())
    if kind == 2:
        record, what = _swap_somewhere(rng, record)
        if isinstance(record, dict) and rng.random() < 0.5:
            record["sha256"] = _record_sha(record)
            what += " (rehashed)"
    elif kind == 3:
        record = [[], {}, None, "x", 3][int(rng.integers(5))]
        what = f"whole record -> {record!r}"
    else:
        record["x"] = _NEST
        what = "deeply nested"
    fit.write_text(_dumps(record, int(rng.choice([300, 200_000]))))
    return f"fit.json: {what}"


def mutate_estimator(rng: np.random.Generator, folder: Path) -> str:
    """One mutation of a saved estimator folder."""
    from finetune import _persist

    files = sorted(p for p in folder.iterdir() if p.is_file())
    kind = int(rng.integers(6))
    if kind <= 2:
        file = files[int(rng.integers(len(files)))]
        return _RAW[int(rng.integers(len(_RAW)))](rng, file)
    meta_path = folder / "estimator.json"
    meta = json.loads(meta_path.read_text())
    if kind == 3:  # an edit without recomputing the checksum
        meta, what = _swap_somewhere(rng, meta)
        meta_path.write_text(json.dumps(meta))
        return f"estimator.json: {what}"
    if kind == 4:  # an invalid edit with the checksum recomputed
        edits = [
            ("extra key", lambda m: m.update(extra=1)),
            ("bad device", lambda m: m["config"].update(device="gpu9")),
            ("unknown param", lambda m: m["params"].update(nope=1)),
            ("classes of 3", lambda m: m["encoder"].update(classes=["a", "b", "c"])),
            ("features dropped", lambda m: m["encoder"].update(features=[])),
            ("scm listed missing", lambda m: m["sha256"].pop("scm.npz", None)),
        ]
        what, edit = edits[int(rng.integers(len(edits)))]
        edit(meta)
        meta["sha256"]["estimator.json"] = _persist._meta_sha(meta)
        meta_path.write_text(json.dumps(meta))
        return f"estimator.json: {what} (rehashed)"
    # architecture sizes in the weights' header, checksums recomputed
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    weights = folder / "model.safetensors"
    with safe_open(str(weights), "np") as f:
        header = dict(f.metadata())
    config = json.loads(header["config"])
    name = [k for k in config if "dim" in k or "num_" in k]
    name = name[int(rng.integers(len(name)))]
    config[name] = int(rng.choice([10**7, 10**9, -5]))
    header["config"] = json.dumps(config)
    save_file(load_file(str(weights)), str(weights), metadata=header)
    meta["sha256"]["model.safetensors"] = _persist._file_sha(weights)
    meta["sha256"]["estimator.json"] = _persist._meta_sha(meta)
    meta_path.write_text(json.dumps(meta))
    return f"model.safetensors: {name}={config[name]} (rehashed)"


def mutate_checkpoint(rng: np.random.Generator, folder: Path) -> str:
    """One mutation of a fine-tuning checkpoint folder."""
    from finetune import _checkpoint

    files = sorted(p for p in folder.iterdir() if p.is_file())
    kind = int(rng.integers(5))
    if kind <= 2:
        file = files[int(rng.integers(len(files)))]
        return _RAW[int(rng.integers(len(_RAW)))](rng, file)
    state_path = folder / "state.json"
    state = json.loads(state_path.read_text())
    if kind == 3:
        state, what = _swap_somewhere(rng, state)
        state_path.write_text(json.dumps(state))
        return f"state.json: {what}"
    # an invalid edit with the checksum recomputed
    edits = [
        ("weights file renamed away", lambda s: s.update(weights="../x.safetensors")),
        ("step a string", lambda s: s.update(step="3")),
        ("history a dict", lambda s: s.update(history={})),
        ("nested", lambda s: s.update(x=_NEST)),
    ]
    what, edit = edits[int(rng.integers(len(edits)))]
    edit(state)
    state["sha256"]["state.json"] = _checkpoint._state_sha(state)
    state_path.write_text(_dumps(state, 200_000))
    return f"state.json: {what} (rehashed)"


# --- running the cases -------------------------------------------------------------


def _listing(folder: Path) -> list[str]:
    root = folder if folder.is_dir() else folder.parent
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def run_case(
    case: str, rng: np.random.Generator, originals: dict[str, Any], work: Path
) -> dict[str, Any]:
    """Mutates a copy of one original and runs its loader; returns the outcome."""
    import jaxscm
    from finetune import CausalMixFTClassifier

    work.mkdir()
    loaders: dict[str, tuple[str, Callable[..., str], Callable[[Path], Any], Any]] = {
        "model_file": (
            "model_file",
            mutate_npz,
            lambda p: _samples(jaxscm.load(p)),
            originals["ref_model_file"],
        ),
        "model_dir": (
            "model_dir",
            mutate_model_dir,
            lambda p: _samples(jaxscm.load_fit(p)),
            originals["ref_model_dir"],
        ),
        "cli_sample": (
            "model_dir",
            mutate_model_dir,
            lambda p: _cli_sample(p, work / "out.csv"),
            originals["ref_cli"],
        ),
        "estimator": (
            "estimator",
            mutate_estimator,
            lambda p: CausalMixFTClassifier.load(p).predict_proba(originals["X"]),
            originals["ref_estimator"],
        ),
        "checkpoint": (
            "checkpoint",
            mutate_checkpoint,
            _checkpoint_answer,
            originals["ref_checkpoint"],
        ),
    }
    source, mutate, load, reference = loaders[case]
    src = Path(originals[source])
    target = work / src.name
    if src.is_dir():
        shutil.copytree(src, target)
    else:
        shutil.copy2(src, target)
    mutation = mutate(rng, target)
    before = _listing(target)
    t = time.perf_counter()
    outcome, detail = "accepted", ""
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            answer = load(target)
        if case == "cli_sample":
            rc, message = answer[0], answer[2]
            answer, reference = answer[:2], reference[:2]
        if case == "cli_sample" and rc != 0:
            one_line = rc == 2 and "\n" not in message
            outcome = "clean" if one_line and src.name in message else "unclear"
            if rc != 2:
                outcome = "traceback"
            detail = message[-300:]
        elif case == "checkpoint" and answer is None:
            # No state.json: indistinguishable from a run cut off before its first
            # checkpoint was committed, so the run starts at step 0; runs are
            # deterministic, so it ends with the same model as a resumed one.
            outcome = "fresh_start"
        elif not _same(answer, reference):
            outcome, detail = "accepted_but_wrong", "answer differs from the original"
    except USER_ERRORS as e:
        named = src.name in str(e) or target.name in str(e)
        outcome, detail = ("clean" if named else "unclear"), f"{type(e).__name__}: {e}"
    except Exception as e:  # noqa: BLE001 - counting tracebacks is the point
        outcome, detail = "traceback", f"{type(e).__name__}: {e}"
    changed = sorted(set(before) ^ set(_listing(target)))
    failed = outcome in ("clean", "unclear", "traceback")
    if case == "cli_sample" and failed and (work / "out.csv").exists():
        changed.append("out.csv (written although sampling failed)")
    return {
        "case": case,
        "mutation": mutation,
        "outcome": outcome,
        "files_changed": changed,
        "seconds": round(time.perf_counter() - t, 3),
        "detail": detail[:400],
    }


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.shape == b.shape
            and bool(np.array_equal(a, b, equal_nan=True))
        )
    return a == b


def run(n: int, seed: int = 0, out: Path | None = RESULTS) -> dict[str, Any]:
    """Runs `n` cases; writes the JSON and markdown reports to `out` (None: none)."""
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        originals = build_originals(root / "originals")
        t_build = time.perf_counter() - t0
        kinds = [*_SHARE, "checkpoint"]
        share = [*_SHARE.values(), 1 - sum(_SHARE.values())]
        cases = rng.choice(kinds, size=n, p=share)
        records = [
            run_case(str(c), rng, originals, root / f"case{i}")
            for i, c in enumerate(cases)
        ]
    counts = Counter(r["outcome"] for r in records)
    per_case = {
        c: dict(Counter(r["outcome"] for r in records if r["case"] == c)) for c in kinds
    }
    result = {
        "n": n,
        "seed": seed,
        "counts": {k: counts.get(k, 0) for k in _OUTCOMES},
        "files_changed": sum(bool(r["files_changed"]) for r in records),
        "per_loader": per_case,
        "seconds": {
            "build": round(t_build, 1),
            "total": round(time.perf_counter() - t0, 1),
        },
        "problems": [
            r
            for r in records
            if r["outcome"] in ("traceback", "accepted_but_wrong", "unclear")
            or r["files_changed"]
        ],
        "cases": records,
    }
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        from jaxscm import atomic_write

        with atomic_write(out / "fuzz_files.json", "w") as f:
            json.dump(result, f, indent=1)
        with atomic_write(out / "fuzz_files.md", "w") as f:
            f.write(_markdown(result))
    return result


def _markdown(r: dict[str, Any]) -> str:
    cols = _OUTCOMES
    lines = [
        "# Fuzzing the loaders with mutated files",
        "",
        f"`python -m benchmarks.fuzz_files --n {r['n']} --seed {r['seed']}`: "
        f"{r['n']} cases in {r['seconds']['total']} s (originals built in "
        f"{r['seconds']['build']} s). Files lost or created by a loader: "
        f"**{r['files_changed']}**.",
        "",
        "| loader | " + " | ".join(cols) + " |",
        "|---" * (len(cols) + 1) + "|",
    ]
    for case, c in r["per_loader"].items():
        lines.append(f"| {case} | " + " | ".join(str(c.get(k, 0)) for k in cols) + " |")
    lines.append("| **all** | " + " | ".join(str(r["counts"][k]) for k in cols) + " |")
    lines += ["", "Outcomes are defined in `benchmarks/fuzz_files.py`.", ""]
    if r["problems"]:
        lines += ["## Problems", ""]
        for p in r["problems"][:50]:
            lines.append(
                f"- {p['case']}, {p['mutation']}: {p['outcome']} {p['detail']}"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command line: ``--n`` cases, ``--seed``."""
    __import__("jaxscm").enable_compilation_cache()  # README: CAUSALMIXFT_JAX_CACHE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    r = run(args.n, args.seed)
    print(json.dumps({k: r[k] for k in ("counts", "files_changed", "seconds")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
