"""`FinetuneConfig`: every knob of the CausalMixFT fine-tuning loop, validated once."""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import Any, Literal

Validation = Literal["real", "synthetic", "both"]
InferenceContext = Literal["real", "real+synthetic"]
LrSchedule = Literal["constant", "linear", "cosine"]
EvalMetric = Literal["roc_auc", "log_loss"]


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """Options of one fine-tuning run (plain, CausalMixFT and SCM-only alike).

    Plain fine-tuning is ``ratio=0``; CausalMixFT is ``ratio > 0``; SCM-only is
    ``ratio > 0, use_real=False``. Nothing else differs between them.

    Attributes:
      ratio: synthetic rows per real training row in each meta-batch (at step 0).
      ratio_end: the ratio at the last step (None: same as `ratio`).
      ratio_schedule: "constant", "linear" or "cosine" from `ratio` to `ratio_end`.
      placement: where synthetic rows go: "context", "query" or "both".
      use_real: whether real rows are in the meta-batches (False: SCM-only).
      members: "pooled" (each step's rows drawn from all SCM ensemble members) or
        "per_step" (all rows from one member drawn at random; samples k times as
        many rows, since the compiled sampler always runs every member).
      query_fraction: share of each meta-batch's rows used as query (loss) rows.
      validation: early-stopping source: "real" held-out rows, a fixed "synthetic"
        set drawn from the SCM ensemble, or "both" (mean of the two scores).
      n_synthetic_val: rows of the synthetic validation set.
      eval_metric: "roc_auc" (higher is better) or "log_loss" (lower is better).
      eval_every: steps between evaluations (also evaluated before step 1).
      patience: evaluations without improvement before stopping (None: never stop
        early; the best evaluation's weights are restored either way).
      min_delta: the improvement that counts.
      lr: peak AdamW learning rate.
      lr_schedule: after linear warm-up, "constant", "linear" or "cosine" decay.
      warmup_fraction: share of `max_steps` spent warming up.
      weight_decay: AdamW weight decay.
      grad_clip: max gradient norm (None: no clipping).
      max_steps: optimiser steps at most (0: evaluate the pre-trained model only).
      time_limit: wall-clock seconds at most (None: no limit); checked every step.
      n_estimators_train: TabPFN preprocessing ensemble members per training step.
      n_estimators: ensemble members for validation and prediction.
      fixed_preprocessing: run TabPFN's preprocessing (feature transforms, class
        permutations) with the run's seed at every step, as prediction does, so the
        network adapts to the preprocessing it will see (TabPFN's own fine-tuning
        default); False draws a new preprocessing seed per step (more varied).
      inference_context: context rows at prediction time: "real" training rows, or
        "real+synthetic" (plus `ratio` times as many rows from the ensemble).
      seed: the one seed of the run (JAX key, NumPy and TabPFN preprocessing seeds).
      device: torch device ("cpu", "cuda", "auto").
      checkpoint_dir: folder for resumable checkpoints (None: no checkpoints).
      checkpoint_every: steps between checkpoints.
      synthetic_classes: the class mix of every step's synthetic rows: None (the
        source's own classes, as before this option existed), "balanced" (equal
        shares, as close as integer counts allow) or a mapping {label: share}
        (shares >= 0, normalised; labels as `jaxscm._schema.label` writes them:
        keys are stored so, 1 and 1.0 being one class). Real rows, validation and
        the inference context are untouched.
    """

    ratio: float = 1.0
    ratio_end: float | None = None
    ratio_schedule: Literal["constant", "linear", "cosine"] = "constant"
    placement: Literal["context", "query", "both"] = "both"
    use_real: bool = True
    members: Literal["per_step", "pooled"] = "pooled"
    query_fraction: float = 0.3
    validation: Validation = "real"
    n_synthetic_val: int = 1000
    eval_metric: EvalMetric = "roc_auc"
    eval_every: int = 10
    patience: int | None = 5
    min_delta: float = 0.0
    lr: float = 3e-4
    lr_schedule: LrSchedule = "cosine"
    warmup_fraction: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    max_steps: int = 100
    time_limit: float | None = None
    n_estimators_train: int = 2
    fixed_preprocessing: bool = True
    n_estimators: int = 4
    inference_context: InferenceContext = "real"
    seed: int = 0
    device: str = "cpu"
    checkpoint_dir: str | None = None
    checkpoint_every: int = 25
    synthetic_classes: str | dict[str, float] | None = None

    def __post_init__(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ValueError(f"FinetuneConfig: {msg}")

        choices: dict[str, tuple[str, ...]] = {
            "ratio_schedule": ("constant", "linear", "cosine"),
            "placement": ("context", "query", "both"),
            "members": ("per_step", "pooled"),
            "validation": ("real", "synthetic", "both"),
            "eval_metric": ("roc_auc", "log_loss"),
            "lr_schedule": ("constant", "linear", "cosine"),
            "inference_context": ("real", "real+synthetic"),
        }
        for name, allowed in choices.items():
            need(
                getattr(self, name) in allowed,
                f"{name} must be one of {allowed}, got {getattr(self, name)!r}",
            )
        need(
            _finite(self.ratio) and self.ratio >= 0,
            f"ratio must be >= 0, got {self.ratio}",
        )
        need(
            self.ratio_end is None or (_finite(self.ratio_end) and self.ratio_end >= 0),
            f"ratio_end must be >= 0 or None, got {self.ratio_end}",
        )
        need(
            self.use_real or self.max_ratio > 0,
            "use_real=False (SCM-only) needs ratio > 0, or nothing is left to train on",
        )
        need(
            0 < self.query_fraction < 1,
            f"query_fraction must be in (0, 1), got {self.query_fraction}",
        )
        need(
            self.n_synthetic_val >= 10,
            f"n_synthetic_val must be >= 10, got {self.n_synthetic_val}",
        )
        need(self.eval_every >= 1, f"eval_every must be >= 1, got {self.eval_every}")
        need(
            self.patience is None or self.patience >= 1,
            f"patience must be >= 1 or None, got {self.patience}",
        )
        need(_finite(self.min_delta) and self.min_delta >= 0, "min_delta must be >= 0")
        need(_finite(self.lr) and self.lr > 0, f"lr must be > 0, got {self.lr}")
        need(0 <= self.warmup_fraction < 1, "warmup_fraction must be in [0, 1)")
        need(
            _finite(self.weight_decay) and self.weight_decay >= 0,
            "weight_decay must be >= 0",
        )
        need(
            self.grad_clip is None or self.grad_clip > 0,
            "grad_clip must be > 0 or None",
        )
        need(
            isinstance(self.max_steps, int) and self.max_steps >= 0,
            f"max_steps must be an int >= 0, got {self.max_steps!r}",
        )
        need(
            self.time_limit is None or self.time_limit > 0,
            f"time_limit must be > 0 seconds or None, got {self.time_limit}",
        )
        need(
            self.n_estimators_train >= 1 and self.n_estimators >= 1,
            "n_estimators_train and n_estimators must be >= 1",
        )
        need(
            isinstance(self.checkpoint_every, int) and self.checkpoint_every >= 1,
            f"checkpoint_every must be an int >= 1, got {self.checkpoint_every!r}",
        )
        need(
            isinstance(self.seed, int) and self.seed >= 0,
            f"seed must be an int >= 0, got {self.seed!r}",
        )
        need(self.checkpoint_every >= 1, "checkpoint_every must be >= 1")
        if self.synthetic_classes is not None:
            # stored with label keys, so the config's JSON round trip is exact
            object.__setattr__(
                self, "synthetic_classes", _class_request(self.synthetic_classes)
            )
            need(
                self.max_ratio > 0,
                "synthetic_classes sets the class mix of the synthetic rows, but "
                "ratio is 0 (no synthetic rows); give ratio > 0 or drop it",
            )
            need(
                self.members == "pooled",
                "synthetic_classes draws class-targeted rows from the pooled "
                "ensemble members; use members='pooled'",
            )

    @property
    def max_ratio(self) -> float:
        """The largest synthetic:real ratio of the schedule."""
        return max(self.ratio, self.ratio if self.ratio_end is None else self.ratio_end)

    @property
    def needs_scm(self) -> bool:
        """Whether the run draws synthetic rows (training, validation or inference)."""
        return (
            self.max_ratio > 0
            or self.validation != "real"
            or self.inference_context != "real"
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return dataclasses.asdict(self)

    def fingerprint(self) -> dict[str, Any]:
        """Fields a resumed run must share with the run that wrote its checkpoint."""
        d = self.to_json()
        for k in ("time_limit", "checkpoint_dir", "checkpoint_every", "device"):
            d.pop(k)
        if d["synthetic_classes"] is None:  # checkpoints written before it resume
            d.pop("synthetic_classes")
        return d


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


_CLASSES_FIX = (
    "give 'balanced' or a mapping {label: share}, e.g. {'yes': 0.5, 'no': 0.5}"
)


def _class_request(request: Any) -> str | dict[str, float]:
    """`synthetic_classes` checked: "balanced", or {label: share} with label keys.

    Raises:
      ValueError: anything else, a negative or non-finite share (naming its label),
        or shares summing to 0.

    Examples:
      >>> _class_request({1: 1, "1": 2, "b": 0.5})
      {'1': 3.0, 'b': 0.5}
    """
    from jaxscm._schema import label

    if isinstance(request, str):
        if request != "balanced":
            raise ValueError(
                f"FinetuneConfig: synthetic_classes={request!r} is not a class "
                f"request; {_CLASSES_FIX}, or None"
            )
        return request
    if not isinstance(request, Mapping) or not request:
        raise ValueError(
            f"FinetuneConfig: synthetic_classes must be None, 'balanced' or a "
            f"non-empty mapping, got {request!r}; {_CLASSES_FIX}"
        )
    shares: dict[str, float] = {}
    for k, v in request.items():
        ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and v >= 0
        if not (ok and math.isfinite(float(v))):
            raise ValueError(
                f"FinetuneConfig: synthetic_classes gives class {k!r} the share "
                f"{v!r}; a share is a finite number >= 0 ({_CLASSES_FIX})"
            )
        shares[label(k)] = shares.get(label(k), 0.0) + float(v)
    if sum(shares.values()) <= 0:
        raise ValueError(
            "FinetuneConfig: the synthetic_classes shares sum to 0; give some class "
            f"a share > 0 ({_CLASSES_FIX})"
        )
    return shares
