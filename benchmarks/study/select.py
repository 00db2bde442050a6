"""The selection protocol: which candidate settings the reported runs use.

A selection study (``select-ft``, ``select-mix``; `benchmarks.study._profiles`) runs
every candidate on development splits: tables no quick report uses, seeds >= 1000
(never a reported seed). Each run's checkpoint is chosen by early stopping on the
split's validation rows, as in a reported run. The candidates are then compared on
the split's *held-out* rows - the rows a reported split would call its test rows,
here development data that no report reads:

    score(c) = mean over development splits s of ROC-AUC(c, s, held-out rows)

and the candidate with the highest score wins (a tie goes to the earlier
candidate, the listed order putting the smaller learning rate, the fewer steps and
the lower ratio first). Why not the early-stopping validation score itself: it is
the maximum over a run's evaluations on 32 rows, so it rises with every extra
evaluation and with every larger move of the weights, whether or not the model got
better - the very optimism the validation-test gap measures. A candidate that
misses a split or failed on one cannot win.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.study._profiles import ZERO_SHOT, Profile
from benchmarks.study._records import read_records


@dataclass(frozen=True)
class Choice:
    """The outcome of a selection study.

    Attributes:
      name: the winning candidate (a method name of the profile).
      overrides: its estimator keyword arguments (what the reported runs freeze).
      rows: one dict per candidate (``name``, ``overrides``, ``splits`` as
        "recorded/all", ``complete``, ``score``, ``improvement``, ``wins``,
        ``losses``, ``val``, ``best_step``, ``wall_s``), in the profile's order.
    """

    name: str
    overrides: Mapping[str, Any]
    rows: tuple[dict[str, Any], ...]


def _split(record: Mapping[str, Any]) -> tuple[str, int, int]:
    c = record["cell"]
    return c["dataset"], int(c["n_train"]), int(c["seed"])


def choose(profile: Profile, records: Sequence[Mapping[str, Any]]) -> Choice:
    """The winning candidate of `profile` by the rule of the module docstring.

    Args:
      profile: a selection profile (its methods: zero-shot and the candidates).
      records: its records (`read_records`); error records count as missing.

    Returns:
      The `Choice`.

    Raises:
      ValueError: no candidate has an ok record on every development split.
    """
    splits = sorted(
        {
            (d, n, s)
            for d in profile.datasets
            for n in profile.sizes
            for s in profile.seeds
        }
    )
    held: dict[str, dict[tuple[str, int, int], Mapping[str, Any]]] = {}
    for r in records:
        if r["status"] == "ok" and r["metrics"]["test_roc_auc"] is not None:
            held.setdefault(r["cell"]["method"], {})[_split(r)] = r
    base = held.get(ZERO_SHOT, {})
    rows = []
    for m in profile.methods:
        if m.zero_shot:
            continue
        got = held.get(m.name, {})
        complete = all(s in got for s in splits)
        auc = [got[s]["metrics"]["test_roc_auc"] for s in splits if s in got]
        gain = [
            got[s]["metrics"]["test_roc_auc"] - base[s]["metrics"]["test_roc_auc"]
            for s in splits
            if s in got and s in base
        ]
        val = [
            got[s]["metrics"]["val_roc_auc"]
            for s in splits
            if s in got and got[s]["metrics"]["val_roc_auc"] is not None
        ]
        rows.append(
            {
                "name": m.name,
                "overrides": dict(m.overrides),
                "splits": f"{len(auc)}/{len(splits)}",
                "complete": complete,
                "score": float(np.mean(auc)) if complete else math.nan,
                "improvement": float(np.mean(gain)) if gain else math.nan,
                "wins": sum(g > 0 for g in gain),
                "losses": sum(g < 0 for g in gain),
                "val": float(np.mean(val)) if val else math.nan,
                "best_step": _median([got[s]["metrics"]["best_step"] for s in got]),
                "wall_s": float(sum(r["timing"]["wall_s"] for r in got.values())),
            }
        )
    ranked = [r for r in rows if r["complete"]]
    if not ranked:
        raise ValueError(
            f"{profile.study}/{profile.name}: no candidate has a record on all "
            f"{len(splits)} development splits; run the study (causalmixft bench "
            f"{profile.study} --profile {profile.name}) first"
        )
    best = max(ranked, key=lambda r: r["score"])  # max keeps the first of ties
    return Choice(best["name"], dict(best["overrides"]), tuple(rows))


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else math.nan


def _f(v: float, signed: bool = False) -> str:
    if not math.isfinite(v):
        return "-"
    return f"{v:+.4f}" if signed else f"{v:.4f}"


def build_selection_report(
    profile: Profile, out: str | os.PathLike[str], *, command: str = ""
) -> Path:
    """Writes ``select.md`` in `out`: every candidate's score and the choice.

    Raises:
      RecordError: the records file is damaged or from other settings.
      ValueError: no candidate is complete yet (`choose`).
    """
    from jaxscm import atomic_write

    out = Path(out)
    records = read_records(out / "records.jsonl", profile.settings_sha256())
    choice = choose(profile, records)
    lines = [
        f"# Selection `{profile.study}`, profile `{profile.name}`",
        "",
        f"Development tables {', '.join(profile.datasets)}; seeds "
        f"{list(profile.seeds)}; {list(profile.sizes)} training rows. Shared "
        f"settings `{dict(profile.settings)}`; each candidate's own knobs replace "
        "them. Score: mean ROC-AUC on the held-out rows of the development splits "
        "(rule and reasons: `benchmarks/study/select.py`). Improvement: over the "
        "zero-shot model on the same rows; wins/losses: splits where it is above / "
        "below zero-shot. val: mean early-stopping validation ROC-AUC at the kept "
        "checkpoint (shown, not used).",
    ]
    if command:
        lines += ["", f"Command: `{command}`"]
    lines += [
        "",
        "| candidate | knobs | splits | score | improvement | wins / losses | val "
        "| median step kept | wall s |",
        "|" + "---|" * 9,
    ]
    for r in choice.rows:
        mark = " **(chosen)**" if r["name"] == choice.name else ""
        lines.append(
            f"| {r['name']}{mark} | `{r['overrides']}` | {r['splits']} | "
            f"{_f(r['score'])} | {_f(r['improvement'], True)} | {r['wins']} / "
            f"{r['losses']} | {_f(r['val'])} | {r['best_step']:.0f} | "
            f"{r['wall_s']:.0f} |"
        )
    lines += ["", f"Chosen: **{choice.name}**, `{dict(choice.overrides)}`."]
    path = out / "select.md"
    with atomic_write(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path
