"""A fine-tuning run on a user's table, written to a run folder.

What `causalmixft finetune data.csv --target y -o run_dir` does, as library calls:
`bridge.read_table` -> `split_target` -> (optionally) `holdout` ->
`finetune_to_folder`. The run folder ends up holding ``model/``
(`CausalMixFTClassifier.save`), ``history.csv`` (per evaluation), ``steps.csv`` (per
step), ``curve.png`` and ``report.md``. While it runs, it checkpoints into
``run_dir/checkpoint``; the same call after an interruption resumes from there (the
SCM ensemble is refitted with the same seed, which gives the same ensemble). An
unfinished run folder is marked by ``.causalmixft-run.json`` (a hash of the data and
options); a folder that is neither new, empty nor such a run is never written to.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from finetune._report import (
    plot_curves,
    run_report,
    write_csv,
    write_text,
)


def split_target(
    table: pd.DataFrame, target: str, *, source: str = "the table"
) -> tuple[pd.DataFrame, pd.Series]:
    """Splits a table into its features and its label column.

    Args:
      table: the table (`bridge.read_table`).
      target: the label column.
      source: what to call the table in errors (its file name).

    Returns:
      `(X, y)`: the other columns, and the label column.

    Raises:
      ValueError: naming `source`: the column is missing (the message lists the
        columns), it has missing labels, or it is the only column.

    Examples:
      >>> import pandas as pd
      >>> X, y = split_target(pd.DataFrame({"a": [1, 2], "y": ["p", "q"]}), "y")
      >>> list(X.columns), y.tolist()
      (['a'], ['p', 'q'])
    """
    if target not in table.columns:
        raise ValueError(
            f"target column {target!r} is not in {source}; its columns are "
            f"{[str(c) for c in table.columns]}"
        )
    y = table[target]
    if y.isna().any():
        raise ValueError(
            f"target column {target!r} of {source} has {int(y.isna().sum())} missing "
            "values; drop those rows first"
        )
    X = table.drop(columns=[target])
    if X.shape[1] == 0:
        raise ValueError(f"{source} has no feature columns besides {target!r}")
    return X, y


def holdout(
    X: pd.DataFrame, y: pd.Series, fraction: float, *, seed: int
) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]:
    """Holds out a stratified share of the rows as a test set.

    Args:
      X: features.
      y: labels.
      fraction: share of each class that goes to the test set, in (0, 1).
      seed: the split's seed.

    Returns:
      `(X_train, y_train, X_test, y_test)`.

    Raises:
      ValueError: `fraction` is not in (0, 1).
    """
    from finetune._mixing import stratified_split

    if not 0 < fraction < 1:
        raise ValueError(f"the test fraction must be in (0, 1), got {fraction}")
    codes = np.unique(y.to_numpy(), return_inverse=True)[1]
    tr, te = stratified_split(np.random.default_rng([seed, 7]), codes, fraction)
    return X.iloc[tr], y.iloc[tr], X.iloc[te], y.iloc[te]


_MARKER = ".causalmixft-run.json"
"""Marks a run folder as ours while its run is unfinished, with the inputs' hash."""
_OUTPUTS = ("model", "history.csv", "steps.csv", "curve.png", "report.md")


def finetune_to_folder(
    X: pd.DataFrame,
    y: pd.Series,
    out: str | os.PathLike[str],
    *,
    X_test: pd.DataFrame | None = None,
    y_test: pd.Series | None = None,
    title: str = "table",
    command: str = "",
    verbose: bool = True,
    **params: Any,
) -> Any:
    """Fine-tunes a `CausalMixFTClassifier` and writes the run folder.

    The folder must be new, empty, or an unfinished run of this function with the
    same data and options (which resumes from its checkpoint); anything else is
    refused before a file is touched. It is created only once the options are
    valid, and removed again when the fit fails before its first checkpoint.

    Args:
      X: training features.
      y: training labels.
      out: the run folder.
      X_test: held-out test features, scored along the way (never trained on).
      y_test: their labels.
      title: what the run is on, for the report and the curve (the file's name).
      command: the command line, for the report.
      verbose: print progress and the report's summary.
      **params: `CausalMixFTClassifier` options (`checkpoint_dir` is set here).

    Returns:
      The fitted `CausalMixFTClassifier` (also saved in ``out/model``).

    Raises:
      FileExistsError: `out` is a file, holds a finished run, holds files that are
        not an unfinished run of ours, or holds an unfinished run of other data or
        options.
      ValueError: bad options or data (from `CausalMixFTClassifier.fit`).
    """
    from finetune._estimator import CausalMixFTClassifier

    out = Path(out)
    key = _inputs_key(X, y, X_test, y_test, params)
    resuming = _check_run_folder(out, key)
    est = CausalMixFTClassifier(
        **params, checkpoint_dir=str(out / "checkpoint"), verbose=verbose
    )
    est._config(0)  # bad options fail here, before the folder exists
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    if not resuming:
        write_text(out / _MARKER, json.dumps({"inputs": key}) + "\n")
    if verbose:
        print(
            f"{title}: {len(y)} training rows, {X.shape[1]} features, "
            f"{len(np.unique(y.to_numpy()))} classes; "
            f"augment={est.augment}"
        )
    t0 = time.perf_counter()
    try:
        est.fit(X, y, X_test=X_test, y_test=y_test)
    except KeyboardInterrupt:
        if (out / "checkpoint").exists():
            print(
                f"\ninterrupted; rerun the same command to resume from "
                f"{out / 'checkpoint'}",
                file=sys.stderr,
            )
        else:
            _discard(out, created)
        raise
    except Exception:
        if not (out / "checkpoint").exists():
            _discard(out, created)  # nothing to resume: leave no partial output
        raise
    wall = time.perf_counter() - t0
    write_csv(out / "history.csv", est.history_)
    write_csv(out / "steps.csv", est.steps_)
    plot_curves(
        out / "curve.png",
        {est.augment: est},
        metric=est.eval_metric,
        title=f"{title}: {est.augment}",
    )
    report = run_report(
        est,
        title=title,
        command=command,
        n_train=len(y),
        n_features=X.shape[1],
        n_test=0 if y_test is None else len(y_test),
        target=str(y.name),
        wall=wall,
    )
    write_text(Path(out) / "report.md", report)
    est.save(out / "model")  # last: a folder with model/ is a finished run
    shutil.rmtree(out / "checkpoint", ignore_errors=True)  # the run is complete
    (out / _MARKER).unlink(missing_ok=True)
    if verbose:
        print("\n".join(report.split("\n")[2:9]))
        print(f"wrote {out}/model, history.csv, steps.csv, curve.png, report.md")
    return est


def _check_run_folder(out: Path, key: str) -> bool:
    """Whether `out` is an unfinished run of the same inputs (resume); refuses the
    folders a run must not write into. Touches nothing."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder; choose a run folder")
    if not out.is_dir():
        return False
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return False
    if "model" in entries:
        raise FileExistsError(
            f"{out} already holds a finished run (model); choose another output folder"
        )
    if _MARKER not in entries:
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise FileExistsError(
            f"{out} is not empty ({shown}) and is not an unfinished causalmixft "
            "run; choose a new or empty folder (nothing was changed)"
        )
    foreign = sorted(set(entries) - {_MARKER, "checkpoint", *_OUTPUTS})
    if foreign:
        raise FileExistsError(
            f"{out} holds an unfinished run and also {foreign}, which the run did "
            "not write; move them away or choose a new folder (nothing was changed)"
        )
    try:
        mark = json.loads((out / _MARKER).read_text())
        theirs = mark["inputs"] if isinstance(mark, dict) else None
    except (OSError, ValueError, KeyError):
        theirs = None
    if theirs != key:
        raise FileExistsError(
            f"{out} holds an unfinished run of other data or options; rerun its own "
            "command to resume it, or choose a new folder (nothing was changed)"
        )
    return True


def _discard(out: Path, created: bool) -> None:
    """Removes what a failed fresh run wrote: its marker, and the folder if new."""
    (out / _MARKER).unlink(missing_ok=True)
    if created:
        with contextlib.suppress(OSError):
            out.rmdir()  # only if empty: never anything the run did not write


def _inputs_key(
    X: pd.DataFrame,
    y: pd.Series,
    X_test: pd.DataFrame | None,
    y_test: pd.Series | None,
    params: dict[str, Any],
) -> str:
    """A hash of the data and the options that shape a run (not its time budget)."""
    h = hashlib.sha256()
    skip = {"time_limit", "device", "verbose", "callback"}
    opts = {k: repr(v) for k, v in sorted(params.items()) if k not in skip}
    h.update(json.dumps(opts, sort_keys=True).encode())
    for part in (X, y, X_test, y_test):
        if part is None:
            h.update(b"|none")
            continue
        h.update(
            b"|" + json.dumps([str(c) for c in getattr(part, "columns", [])]).encode()
        )
        h.update(pd.util.hash_pandas_object(part, index=False).to_numpy().tobytes())
    return h.hexdigest()
