"""The CausalMixFT fine-tuning loop: one code path for plain, mixed and SCM-only runs.

Each step: draw the step's synthetic rows from the SCM ensemble stream (fresh noise
and member), assemble a context/query meta-batch with the real rows
(`finetune._mixing`), run TabPFN's preprocessing and a differentiable forward on the
query, and take an AdamW step. Every `eval_every` steps (and before the first) the
model predicts the validation rows from the real training context; the best
evaluation's weights are kept and restored at the end, so a run in which nothing
beats the pre-trained weights returns them unchanged.

All randomness of step s derives from (seed, s): the meta-batch split from
`numpy.random.default_rng([seed, s])`, TabPFN's preprocessing seed from the same,
the synthetic rows from `fold_in(key(seed), s)`. A run resumed from a checkpoint
therefore continues exactly as if it had never stopped, and a run with ratio 0 is
bit-for-bit the plain fine-tuning run (the stream is never built).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from finetune import _checkpoint
from finetune._config import FinetuneConfig
from finetune._mixing import SyntheticRows, build_meta_batch, ratio_at
from finetune._tabpfn import (
    Network,
    freeze_unused,
    make_classifier,
    network_of,
    predict_proba,
    query_loss,
)


@dataclasses.dataclass
class FinetuneResult:
    """What a fine-tuning run returns.

    Attributes:
      network: the network holding the restored best weights.
      history: one dict per evaluation: step, train_loss (mean since the previous
        evaluation), lr, ratio, synthetic_share, val_* and (when given) test_*
        metrics, val_score (the early-stopping score, higher is better), seconds.
      steps: one dict per step: step, loss, lr, ratio, n_real, n_synthetic,
        synthetic_share, seconds, synthetic_seconds (time spent drawing rows).
      best_step: the step whose weights were restored (0: the pre-trained ones).
      best_score: their validation score.
      stop_reason: "max_steps", "early_stopping", "time_limit" or "no_steps".
      seconds: wall time of this call.
    """

    network: Network
    history: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    best_step: int
    best_score: float
    stop_reason: str
    seconds: float


def _step_seed(seed: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, step]).generate_state(1)[0] & 0x7FFFFFFF)


def lr_at(step: int, config: FinetuneConfig) -> float:
    """Learning rate of (0-based) `step`: linear warm-up, then the decay schedule."""
    n = max(config.max_steps, 1)
    warm = int(config.warmup_fraction * n)
    if step < warm:
        return config.lr * (step + 1) / (warm + 1)
    t = (step - warm) / max(n - warm, 1)
    if config.lr_schedule == "linear":
        return config.lr * (1.0 - t)
    if config.lr_schedule == "cosine":
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * t))
    return config.lr


def scores(y: np.ndarray, p: np.ndarray, prefix: str) -> dict[str, float]:
    """ROC-AUC (one-vs-rest over the classes present), log-loss and accuracy."""
    from sklearn.metrics import log_loss, roc_auc_score

    present = np.unique(y)
    out = {
        f"{prefix}_log_loss": float(
            log_loss(y, _normalise(p), labels=range(p.shape[1]))
        ),
        f"{prefix}_accuracy": float((p.argmax(1) == y).mean()),
    }
    if len(present) < 2:
        out[f"{prefix}_roc_auc"] = float("nan")
    elif p.shape[1] == 2:
        out[f"{prefix}_roc_auc"] = float(roc_auc_score(y, p[:, 1]))
    else:
        q = p[:, present] / np.clip(p[:, present].sum(1, keepdims=True), 1e-12, None)
        yy = np.searchsorted(present, y)
        out[f"{prefix}_roc_auc"] = float(
            roc_auc_score(yy, q[:, 1] if len(present) == 2 else q, multi_class="ovr")
        )
    return out


def finetune(
    tfm: Any,
    X: np.ndarray,
    y: np.ndarray,
    *,
    config: FinetuneConfig,
    n_classes: int,
    categorical: list[int] | None = None,
    X_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    scm: Any = None,
    decode: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
    X_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    callback: Callable[[dict[str, Any]], Any] | None = None,
) -> FinetuneResult:
    """Fine-tunes `tfm` in place on real rows mixed with fresh synthetic rows.

    Args:
      tfm: the TFM: a `TabPFNClassifier` as `finetune.load_tfm` returns (its
        network is copied), or a `Network`, which is trained in place.
      X, y: encoded real training rows (float32 codes, int64 labels 0..n_classes-1).
      config: the run's options.
      n_classes: number of classes.
      categorical: indices of categorical features.
      X_val, y_val: real validation rows (needed unless validation="synthetic").
      scm: the fitted `jaxscm.Ensemble` (needed when `config.needs_scm`).
      decode: maps the ensemble's samples to encoded (X, y).
      X_test, y_test: optional rows scored at every evaluation (reported only).
      callback: called with each step's and each evaluation's record (a dict with
        "kind": "step" or "eval").

    Returns:
      The `FinetuneResult`.

    Raises:
      ValueError: on missing validation rows or SCM, or a checkpoint folder that
        holds another run.
    """
    t_start = time.perf_counter()
    cfg = config
    categorical = list(categorical or [])
    no_val = X_val is None or y_val is None or len(y_val) == 0
    if cfg.max_steps == 0 and no_val and cfg.validation == "real":
        # zero-shot without validation rows: nothing to train or to evaluate
        net = tfm if isinstance(tfm, Network) else network_of(tfm)
        net.module.eval()
        seconds = time.perf_counter() - t_start
        return FinetuneResult(net, [], [], 0, float("nan"), "no_steps", seconds)
    if cfg.validation != "synthetic" and no_val:
        raise ValueError(f"validation={cfg.validation!r} needs real validation rows")
    if cfg.needs_scm and (scm is None or decode is None):
        raise ValueError(
            "this configuration draws synthetic rows (ratio > 0, synthetic "
            "validation or "
            "synthetic inference context) but no SCM ensemble was given"
        )
    import jax

    n_real = len(y)
    key = jax.random.key(cfg.seed)
    stream_key, val_key = jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)

    syn_val = None
    if cfg.validation != "real":
        src = SyntheticRows(val_key, scm, decode, cfg.n_synthetic_val, members="pooled")
        syn_val = src.draw(
            np.random.default_rng([cfg.seed, 1 << 30]), cfg.n_synthetic_val
        )

    net = tfm if isinstance(tfm, Network) else network_of(tfm)
    module = net.module
    freeze_unused(module)
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    train_clf = make_classifier(
        net,
        n_estimators=cfg.n_estimators_train,
        categorical=categorical,
        device=cfg.device,
        seed=cfg.seed,
        batched=True,
    )

    def evaluate(step: int) -> dict[str, Any]:
        kw = dict(
            n_estimators=cfg.n_estimators,
            categorical=categorical,
            device=cfg.device,
            seed=cfg.seed,
        )
        rec: dict[str, Any] = {}
        parts = []
        if cfg.validation in ("real", "both"):
            rec.update(
                scores(y_val, predict_proba(net, X, y, X_val, n_classes, **kw), "val")
            )
            parts.append(rec["val_" + cfg.eval_metric])
        if syn_val is not None:
            p = predict_proba(net, X, y, syn_val[0], n_classes, **kw)
            rec.update(scores(syn_val[1], p, "val_synthetic"))
            parts.append(rec["val_synthetic_" + cfg.eval_metric])
        if X_test is not None and y_test is not None:
            rec.update(
                scores(
                    y_test, predict_proba(net, X, y, X_test, n_classes, **kw), "test"
                )
            )
        score = float(np.mean(parts))
        rec["val_score"] = -score if cfg.eval_metric == "log_loss" else score
        return rec

    fingerprint = _fingerprint(cfg, X, y, X_val, y_val)
    history: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    best_state: dict[str, torch.Tensor] | None = None
    best_step, best_score, bad, start, stop_reason = 0, -math.inf, 0, 0, ""

    ckpt = _checkpoint.load(cfg.checkpoint_dir) if cfg.checkpoint_dir else None
    if ckpt is not None:
        if ckpt["fingerprint"] != fingerprint:
            raise ValueError(
                f"the checkpoint in {cfg.checkpoint_dir} belongs to a run with "
                "other data "
                "or options; use another checkpoint_dir or delete it to start afresh"
            )
        module.load_state_dict(ckpt["weights"])
        opt.load_state_dict(ckpt["optimizer"])
        best_state = ckpt["best"]
        history, steps = ckpt["history"], ckpt["steps"]
        best_step, best_score, bad = ckpt["best_step"], ckpt["best_score"], ckpt["bad"]
        start, stop_reason = ckpt["step"], ckpt["stop_reason"]

    def checkpoint(step: int, reason: str) -> None:
        if cfg.checkpoint_dir:
            _checkpoint.save(
                cfg.checkpoint_dir,
                step=step,
                weights=net.state_dict(),
                best=best_state,
                optimizer=opt.state_dict(),
                state={
                    "fingerprint": fingerprint,
                    "history": history,
                    "steps": steps,
                    "best_step": best_step,
                    "best_score": best_score,
                    "bad": bad,
                    "stop_reason": reason,
                },
            )

    def record_eval(step: int) -> bool:
        """Evaluates, updates the best state; True when patience has run out."""
        nonlocal best_state, best_step, best_score, bad
        since = [
            s["loss"]
            for s in steps
            if s["step"] > (history[-1]["step"] if history else 0)
        ]
        rec = {
            "kind": "eval",
            "step": step,
            "train_loss": float(np.mean(since)) if since else None,
            "lr": lr_at(step, cfg) if step < cfg.max_steps else 0.0,
            "ratio": ratio_at(
                max(step - 1, 0),
                cfg.max_steps,
                cfg.ratio,
                cfg.ratio_end,
                cfg.ratio_schedule,
            ),
            "synthetic_share": steps[-1]["synthetic_share"] if steps else 0.0,
            **evaluate(step),
            "seconds": time.perf_counter() - t_start,
        }
        history.append(rec)
        if callback is not None:
            callback(rec)
        if rec["val_score"] > best_score + cfg.min_delta or not math.isfinite(
            best_score
        ):
            best_state, best_step, best_score, bad = (
                net.state_dict(),
                step,
                rec["val_score"],
                0,
            )
            return False
        bad += 1
        return cfg.patience is not None and bad >= cfg.patience

    if not history:
        record_eval(0)
    max_syn = int(round(cfg.max_ratio * n_real))
    source = None
    if max_syn > 0 and not stop_reason:
        source = SyntheticRows(
            stream_key, scm, decode, max_syn, members=cfg.members, start=start
        )
    empty_X, empty_y = X[:0], y[:0]
    step = start
    module.train()
    while not stop_reason:
        if step >= cfg.max_steps:
            stop_reason = "max_steps" if cfg.max_steps else "no_steps"
            break
        elapsed = time.perf_counter() - t_start
        mean_step = (
            float(np.mean([s["seconds"] for s in steps[-10:]])) if steps else 0.0
        )
        if cfg.time_limit is not None and elapsed + mean_step > cfg.time_limit:
            stop_reason = "time_limit"
            break
        t0 = time.perf_counter()
        rng = np.random.default_rng([cfg.seed, step])
        ratio = ratio_at(
            step, cfg.max_steps, cfg.ratio, cfg.ratio_end, cfg.ratio_schedule
        )
        Xs, ys = empty_X, empty_y
        if source is not None:
            Xs, ys = source.draw(
                np.random.default_rng([cfg.seed, step, 1]), int(round(ratio * n_real))
            )
        t_syn = time.perf_counter() - t0
        mb = build_meta_batch(
            rng,
            X,
            y,
            Xs,
            ys,
            query_fraction=cfg.query_fraction,
            placement=cfg.placement,
            use_real=cfg.use_real,
        )
        lr = lr_at(step, cfg)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad()
        loss = query_loss(
            train_clf,
            mb.X_context,
            mb.y_context,
            mb.X_query,
            mb.y_query,
            seed=cfg.seed if cfg.fixed_preprocessing else _step_seed(cfg.seed, step),
        )
        loss.backward()
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        step += 1
        rec = {
            "kind": "step",
            "step": step,
            "loss": float(loss.detach()),
            "lr": lr,
            "ratio": ratio,
            "n_real": int(np.sum(~mb.synthetic_context) + np.sum(~mb.synthetic_query)),
            "n_synthetic": mb.n_synthetic,
            "synthetic_share": mb.synthetic_share,
            "seconds": time.perf_counter() - t0,
            "synthetic_seconds": t_syn,
        }
        steps.append(rec)
        if callback is not None:
            callback(rec)
        if step % cfg.eval_every == 0 or step == cfg.max_steps:
            if record_eval(step):
                stop_reason = "early_stopping"
        if step % cfg.checkpoint_every == 0 and not stop_reason:
            checkpoint(step, "")
    if history[-1]["step"] != step and stop_reason == "time_limit":
        record_eval(step)
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    checkpoint(step, stop_reason)
    return FinetuneResult(
        net,
        history,
        steps,
        best_step,
        best_score,
        stop_reason,
        time.perf_counter() - t_start,
    )


def _normalise(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1.0)
    return p / p.sum(axis=1, keepdims=True)


def _fingerprint(cfg: FinetuneConfig, *arrays: Any) -> str:
    h = hashlib.sha256(json.dumps(cfg.fingerprint(), sort_keys=True).encode())
    for a in arrays:
        h.update(b"|" if a is None else np.ascontiguousarray(a).tobytes())
    return h.hexdigest()
