"""Fuzz the command line's input side with hostile tables (issue 16).

    OMP_NUM_THREADS=1 python -m benchmarks.fuzz_inputs --n 500 [--seed 0]

Each case is a table file built from a seeded random base table with one to three
hostile features (non-finite and huge numbers, mixed types, duplicate or empty
header names, binary bytes, a plain file named .gz, 1-3 rows, one class, an all-NaN
column, 300 categories, unicode, very long cells, ragged rows, ...), sometimes with
hostile flag values, sometimes with an output folder that already holds a user's
files. It goes through `finetune.cli.main` (``fit-scm`` or ``finetune``) in this
process, with the table checks run for real and the expensive stage replaced: where
`jaxscm.fit_scm` would start discovery, the table is encoded (`prepare`) and the
case counts as accepted. Outcomes:

* ``clean``: exit status 2 with one error line, nothing written;
* ``messy``: exit status 2, but more than one line, or something was written;
* ``traceback``: an exception escaped `main` (or another exit status);
* ``accepted``: the table reached the fit; ``accepted_wrong`` when it should not
  have (a defect that must be refused) or the encoded table holds a non-finite or
  beyond-float32 value or a column the file's header does not have;
* ``lost``: a user's file (the data file, or one in the output folder) changed.

With ``--real-fits K`` (default 20) the first K accepted ``fit-scm`` cases run again
with the real fit (1 graph, 2 discovery resamples), which must fit or end cleanly.

Targets: 0 traceback, 0 accepted_wrong, 0 lost. Results go to
``benchmarks/results/fuzz_inputs.{json,md}``.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import shutil
import tempfile
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

RESULTS = Path(__file__).parent / "results"

# Features a table must be refused for, whatever else it holds.
MUST_REFUSE = {
    "dup_header",
    "empty_header",
    "binary",
    "plain_as_gz",
    "single_class",
    "ragged",
    "blank",
    "header_only",
    "missing_target",
    "nan_target_all",
    "user_files_in_out",
}
FEATURES = (
    "inf",
    "huge",
    "nan_words",
    "mixed",
    "dup_header",
    "empty_header",
    "binary",
    "plain_as_gz",
    "real_gz",
    "few_rows",
    "single_class",
    "all_nan_col",
    "cats300",
    "unicode",
    "long_cell",
    "ragged",
    "blank",
    "header_only",
    "missing_target",
    "nan_target_some",
    "nan_target_all",
    "bool_col",
    "const_col",
    "bad_flag",
    "user_files_in_out",
)


class Accepted(BaseException):
    """Raised by the stand-in for `jaxscm.fit_scm`: the table reached the fit."""

    def __init__(self, codes: np.ndarray, names: list[str]) -> None:
        super().__init__("accepted")
        self.codes, self.names = codes, names


def _fake_fit_scm(data: Any, target: str | None = None, **kw: Any) -> Any:
    from jaxscm.fitting import prepare

    table = prepare(data, target, columns=kw.get("columns"), kinds=kw.get("kinds"))
    raise Accepted(table.codes, [c.name for c in table.columns])


def make_case(rng: np.random.Generator, i: int) -> dict[str, Any]:
    """One hostile case: its features, file name, bytes, command and flags."""
    k = int(rng.integers(1, 4))
    feats = set(rng.choice(FEATURES, size=k, replace=False).tolist())
    if "real_gz" in feats:
        feats.discard("plain_as_gz")  # a real gzip file is not a plain one
    n = int(rng.integers(4, 60))
    if "few_rows" in feats:
        n = int(rng.integers(1, 4))
    cols: dict[str, list[Any]] = {}
    for j in range(int(rng.integers(1, 4))):
        cols[f"x{j}"] = rng.normal(size=n).round(4).tolist()
    cols["c"] = [str(v) for v in rng.choice(["lo", "mid", "hi"], size=n)]
    y = [("p", "q")[r % 2] for r in range(n)]
    if "single_class" in feats:
        y = ["p"] * n
    cols["y"] = y
    df = pd.DataFrame(cols).astype(object)
    r = int(rng.integers(0, n))
    if "inf" in feats:
        df.loc[r, "x0"] = str(rng.choice(["inf", "-inf", "Infinity", "1e400"]))
    if "huge" in feats:
        df.loc[r, "x0"] = str(rng.choice(["1e39", "-3.5e38", "1e308", "3.4e39"]))
    if "nan_words" in feats:
        df.loc[r, "x0"] = str(rng.choice(["nan", "NA", "", "NaN", "null"]))
    if "mixed" in feats:
        df.loc[r, "x0"] = str(rng.choice(["abc", "1,5", "--", "x"]))
    if "all_nan_col" in feats:
        df["gone"] = [""] * n
    if "cats300" in feats:
        df["many"] = [f"k{int(v)}" for v in rng.integers(0, 300, size=n)]
    if "unicode" in feats:
        df = df.rename(
            columns={"c": str(rng.choice(["città", "名前", "\u202ename", "ü b"]))}
        )
        df.iloc[r, -2] = str(rng.choice(["é", "😀", "\u200b", "ß"]))
    if "long_cell" in feats:
        df.loc[r, "c"] = "z" * int(rng.integers(1000, 200_000))
    if "bool_col" in feats:
        df["flag"] = rng.choice(["True", "False"], size=n).tolist()
    if "const_col" in feats:
        df["same"] = ["7"] * n
    if "nan_target_some" in feats:
        df.loc[r, "y"] = ""
    if "nan_target_all" in feats:
        df["y"] = [""] * n
    if "missing_target" in feats:
        df = df.rename(columns={"y": "label"})
    text = df.to_csv(index=False)
    lines = text.split("\n")
    if "dup_header" in feats:
        names = lines[0].split(",")
        names[0] = names[-1] if rng.random() < 0.5 else names[1]
        lines[0] = ",".join(names)
    if "empty_header" in feats:
        names = lines[0].split(",")
        names[int(rng.integers(0, len(names) - 1))] = str(rng.choice(["", " "]))
        lines[0] = ",".join(names)
    if "ragged" in feats and len(lines) > 2:
        lines[1] += ",extra,1"
    if "header_only" in feats:
        lines = lines[:1] + [""]
    if "blank" in feats:
        lines = ["", "", " "]
    data = "\n".join(lines).encode()
    if "binary" in feats:
        noise = rng.integers(0, 256, size=int(rng.integers(10, 400)), dtype=np.uint8)
        cut = int(rng.integers(0, len(data) + 1))
        data = data[:cut] + noise.tobytes() + b"\x00" + data[cut:]
    name = "data.csv"
    if "real_gz" in feats:
        name, data = "data.csv.gz", gzip.compress(data)
    if "plain_as_gz" in feats:
        name = "data.csv.gz"
    command = "fit-scm" if rng.random() < 0.5 else "finetune"
    flags: list[str] = []
    if "bad_flag" in feats:
        flag, value = [
            ("--seed", "-1"),
            ("--seed", "x"),
            ("--n-dags", "0"),
            ("--alpha", "2") if command == "fit-scm" else ("--lr", "nan"),
            ("--alpha", "nan") if command == "fit-scm" else ("--device", "cuda"),
            ("--time-limit", "-3"),
        ][int(rng.integers(0, 6))]
        flags = [flag, value]
    return {
        "id": i,
        "features": sorted(feats),
        "name": name,
        "data": data,
        "command": command,
        "flags": flags,
    }


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def run_case(case: dict[str, Any], root: Path, real_fit: Any = None) -> dict[str, Any]:
    """Runs one case through `finetune.cli.main`; returns its outcome record.

    With `real_fit` (the real `jaxscm.fit_scm`), an accepted ``fit-scm`` case runs
    again with the real, small fit (1 graph, 2 resamples) to a model directory.
    """
    from finetune.cli import main

    folder = root / f"case{case['id']}"
    folder.mkdir()
    data = folder / case["name"]
    data.write_bytes(case["data"])
    out = folder / "out"
    feats = set(case["features"])
    if "user_files_in_out" in feats:
        (out / "checkpoint").mkdir(parents=True)
        (out / "checkpoint" / "weights.bin").write_bytes(b"user weights")
        (out / "history.csv").write_text("epoch,loss\n1,0.5\n")
    before = _snapshot(folder)
    argv = [case["command"], str(data), "--target", "y", "-o", str(out)]
    argv += case["flags"]
    if case["command"] == "fit-scm":
        argv.append("--quiet")
    err, rec = io.StringIO(), {"id": case["id"], "features": case["features"]}
    rec["argv"] = " ".join(a.replace(str(folder), ".") for a in argv)
    accepted = None
    with (
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(io.StringIO()),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        try:
            rc: Any = main(argv)
        except Accepted as a:
            rc, accepted = "accepted", a
        except SystemExit as e:
            rc = f"argparse {e.code}"
        except BaseException as e:  # noqa: BLE001 - a traceback is the finding
            rc = "traceback"
            rec["error"] = "".join(traceback.format_exception_only(e)).strip()[-300:]
    message = err.getvalue().strip()
    after = _snapshot(folder)
    lost = any(after.get(k) != v for k, v in before.items())
    written = sorted(set(after) - set(before))
    rec["message"] = message[-300:]
    if lost:
        rec["outcome"] = "lost"
    elif rc == "traceback" or rc not in (2, "argparse 2", "accepted"):
        rec["outcome"] = "traceback"
        rec.setdefault("error", f"exit status {rc}")
    elif rc == "accepted":
        rec["outcome"] = "accepted"
        why = _wrong(accepted, feats, case)
        if why:
            rec["outcome"], rec["why"] = "accepted_wrong", why
        elif real_fit is not None and case["command"] == "fit-scm":
            rec.update(_real_fit(argv, real_fit))
    else:
        one_line = message.count("\n") == 0 and message.startswith("causalmixft")
        clean = one_line and not written
        rec["outcome"] = "clean" if clean else "messy"
        if written:
            rec["written"] = written
    shutil.rmtree(folder, ignore_errors=True)
    return rec


def _real_fit(argv: list[str], real_fit: Any) -> dict[str, Any]:
    """Reruns an accepted ``fit-scm`` case with the real (small) fit."""
    import jaxscm
    from finetune.cli import main

    fake, jaxscm.fit_scm = jaxscm.fit_scm, real_fit
    err = io.StringIO()
    try:
        with (
            contextlib.redirect_stderr(err),
            contextlib.redirect_stdout(io.StringIO()),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            rc = main(argv + ["--n-dags", "1", "--n-bootstrap", "2"])
    except BaseException as e:  # noqa: BLE001 - a traceback is the finding
        text = "".join(traceback.format_exception_only(e)).strip()[-300:]
        return {"real_fit": "traceback", "outcome": "traceback", "error": text}
    finally:
        jaxscm.fit_scm = fake
    message = err.getvalue().strip()
    if rc == 2 and message.count("\n") == 0:
        return {"real_fit": "clean", "real_message": message[-300:]}
    if rc == 0:
        return {"real_fit": "fitted"}
    return {"real_fit": "messy", "outcome": "messy", "message": message[-300:]}


def _wrong(acc: Accepted, feats: set[str], case: dict[str, Any]) -> str:
    """Why an accepted case should not have been (empty: it was fine)."""
    must = sorted(feats & MUST_REFUSE)
    if must:
        return f"accepted despite {must}"
    if "bad_flag" in feats:
        return f"accepted despite the flag {case['flags']}"
    codes = np.asarray(acc.codes, np.float64)
    if not np.isfinite(codes).all():
        return "the encoded table holds NaN or inf"
    if (np.abs(codes) > np.finfo(np.float32).max).any():
        return "the encoded table holds values beyond float32"
    header = case["data"].split(b"\n", 1)[0].decode("utf-8", "replace")
    if case["name"].endswith(".gz"):
        header = gzip.decompress(case["data"]).split(b"\n", 1)[0].decode()
    names = header.split(",")
    extra = [c for c in acc.names if c not in names]
    if extra:
        return f"columns {extra} are not in the file's header"
    return ""


def run(n: int, seed: int = 0, real_fits: int = 0) -> dict[str, Any]:
    """Runs `n` cases; returns the counts and the records of the failures.

    Args:
      n: cases.
      seed: the generator's seed.
      real_fits: run this many accepted ``fit-scm`` cases again with the real fit.
    """
    import jaxscm

    rng = np.random.default_rng(seed)
    real = jaxscm.fit_scm
    jaxscm.fit_scm = _fake_fit_scm
    records = []
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="fuzz_inputs_") as tmp:
            for i in range(n):
                case = make_case(rng, i)
                left = real_fits - sum("real_fit" in r for r in records)
                records.append(run_case(case, Path(tmp), real if left > 0 else None))
    finally:
        jaxscm.fit_scm = real
    counts = Counter(r["outcome"] for r in records)
    by_feature: dict[str, Counter] = {}
    for r in records:
        for f in r["features"]:
            by_feature.setdefault(f, Counter())[r["outcome"]] += 1
    bad = [
        r for r in records if r["outcome"] in ("traceback", "accepted_wrong", "lost")
    ]
    return {
        "n": n,
        "seed": seed,
        "real_fits_asked": real_fits,
        "seconds": round(time.perf_counter() - t0, 1),
        "counts": {
            k: counts.get(k, 0)
            for k in (
                "clean",
                "messy",
                "traceback",
                "accepted",
                "accepted_wrong",
                "lost",
            )
        },
        "real_fits": dict(Counter(r["real_fit"] for r in records if "real_fit" in r)),
        "by_feature": {f: dict(c) for f, c in sorted(by_feature.items())},
        "failures": bad[:50],
        "messy": [r for r in records if r["outcome"] == "messy"][:20],
    }


def write_results(res: dict[str, Any], folder: Path = RESULTS) -> None:
    """Writes ``fuzz_inputs.json`` and ``fuzz_inputs.md``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fuzz_inputs.json").write_text(json.dumps(res, indent=1) + "\n")
    c = res["counts"]
    lines = [
        "# Hostile-input fuzz of the command line",
        "",
        f"`python -m benchmarks.fuzz_inputs --n {res['n']} --seed {res['seed']} "
        f"--real-fits {res['real_fits_asked']}`: "
        f"{res['n']} cases in {res['seconds']} s (table checks for real, the fit "
        "replaced by encoding the table).",
        "",
        "| outcome | cases |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in c.items()),
        "",
        "Targets: 0 traceback, 0 accepted_wrong, 0 lost. Accepted `fit-scm` cases run "
        f"again with the real fit (1 graph, 2 resamples): {res['real_fits']}.",
        "",
        "| feature | " + " | ".join(c) + " |",
        "|---|" + "---|" * len(c),
    ]
    for f, fc in res["by_feature"].items():
        lines.append(f"| {f} | " + " | ".join(str(fc.get(k, 0)) for k in c) + " |")
    if res["failures"]:
        lines += ["", "## Failures", ""]
        for r in res["failures"]:
            detail = r.get("why") or r.get("error") or r.get("message")
            lines.append(f"- {r['outcome']} {r['features']}: `{r['argv']}`: {detail}")
    (folder / "fuzz_inputs.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    """Runs the fuzz, prints the counts and writes the results."""
    __import__("jaxscm").enable_compilation_cache()  # README: CAUSALMIXFT_JAX_CACHE
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=500, help="cases")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--real-fits",
        type=int,
        default=20,
        help="accepted fit-scm cases to run again with the real fit",
    )
    parser.add_argument("--out", default=str(RESULTS), help="results folder")
    args = parser.parse_args()
    res = run(args.n, args.seed, args.real_fits)
    write_results(res, Path(args.out))
    print(json.dumps(res["counts"]))
    for r in res["failures"][:20]:
        print(r["outcome"], r["features"], r.get("why") or r.get("error"), r["message"])


if __name__ == "__main__":
    main()
