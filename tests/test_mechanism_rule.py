"""benchmarks.mechanism_rule: the scores and the decision rule on hand-made records."""

from __future__ import annotations

import numpy as np

from benchmarks.mechanism_rule import ITERS, _scores, choose, report


def _node(curve_end: float, val_linear: float, val_hgb: float) -> dict:
    # held-out loss of gradient boosting falls linearly from 1.0 to `curve_end`
    curve = np.linspace(1.0, curve_end, 100)
    return {
        "node": "x",
        "parents": ["a"],
        "kind": "numeric",
        "held_linear": 1.0,
        "held_hgb": [float(curve[m - 1]) for m in ITERS],
        "val_linear": val_linear,
        "val_hgb": val_hgb,
        "seconds_linear": 0.0,
        "seconds_hgb100": 0.0,
    }


def _record(n: int, nodes: list[dict]) -> dict:
    return {"table": "t", "n": n, "n_val": 10, "nodes": nodes, "seconds": 0.0}


def test_scores__pick_rel_regret_and_agreement():
    # boosting passes 0.9 of the linear loss after 21 iterations and wins on validation
    rec = _record(128, [_node(0.5, 1.0, 0.6)])
    early, late = _scores(rec, 20), _scores(rec, 25)
    assert early == {"rel": 1.0, "regret": 0.4, "agree": 0.0, "hgb_share": 0.0}
    assert late == {"rel": 0.6, "regret": 0.0, "agree": 1.0, "hgb_share": 1.0}
    assert _scores(rec, "oracle")["regret"] == 0.0
    assert _scores(rec, "linear")["regret"] == 0.4


def test_choose__smallest_iterations_within_tolerance_of_hgb100_at_every_size():
    win = _node(0.5, 1.0, 0.6)  # needs > 20 iterations to be picked
    slow = _node(0.85, 1.0, 0.6)  # needs > 66 iterations
    assert choose([_record(128, [win]), _record(500, [win])]) == 25
    # one size needing more iterations decides for both
    assert choose([_record(128, [win]), _record(500, [slow])]) == 75
    assert choose([]) is None


def test_report__names_the_decision_and_every_candidate():
    text = report([_record(128, [_node(0.5, 1.0, 0.6)])])
    assert "Decision rule applied to these records: `hgb25`." in text
    for label in ("hgb5", "hgb100", "linear", "oracle"):
        assert f"| {label} | 128 |" in text
