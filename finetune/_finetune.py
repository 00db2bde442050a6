"""The CausalMixFT fine-tuning loop: one code path for plain, mixed and SCM-only runs.

Each step: draw the step's synthetic rows from the run's `SyntheticSource`
(`finetune._sources`: the SCM ensemble stream with fresh noise and member, or a
generator of `finetune.augmenters` as a fresh stream or a pool drawn once), assemble
a context/query meta-batch with the real rows (`finetune._mixing`), run TabPFN's
preprocessing and a differentiable forward on the query, and take an AdamW step.
Every `eval_every` steps (and before the first) the model predicts the validation
rows from the real training context; the best evaluation's weights are kept and
restored at the end, so a run in which nothing beats the pre-trained weights returns
them unchanged.

All randomness of step s derives from (seed, s): the meta-batch split from
`numpy.random.default_rng([seed, s])`, TabPFN's preprocessing seed from the same,
the synthetic rows from `fold_in(key(seed), s)` pooled with
`default_rng([seed, s, 1])` (a generator's source draws with that generator; with
`synthetic_classes` the SCM rows are `finetune._class_rows.ClassRows`'
class-targeted draw from `fold_in(key(seed), s)` alone). A run
resumed from a checkpoint therefore continues exactly as if it had never stopped,
and a run with ratio 0 is bit-for-bit the plain fine-tuning run (the stream is never
built).

`finetune` checks its arguments and hands over to `_Loop`, whose methods are the
steps of a run: `run` drives, `stop_rule` (max steps, time limit), `train_step`,
`synthetic`, `evaluate`, `record_eval` (best weights, early stopping) and
`resume` / `save` (the checkpoint).
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
from finetune._class_rows import ClassRows
from finetune._config import FinetuneConfig
from finetune._encode import Selection
from finetune._mixing import SyntheticRows, build_meta_batch, ratio_at
from finetune._sources import ScmSource, SyntheticSource
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
        synthetic_share, seconds, synthetic_seconds (time spent drawing rows) and,
        with `synthetic_classes`, synthetic_counts (the step's synthetic rows per
        class code).
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
    selection: Selection | None = None,
    X_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    callback: Callable[[dict[str, Any]], Any] | None = None,
    source: SyntheticSource | None = None,
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
      selection: where the encoder's columns sit in the ensemble's rows
        (`TableEncoder.synthetic_selection`; the SCM shares the encoder's
        schema); the rows are selected and labelled inside the compiled sampler.
      X_test, y_test: optional rows scored at every evaluation (reported only).
      callback: called with each step's and each evaluation's record (a dict with
        "kind": "step" or "eval").
      source: where the training steps' synthetic rows come from instead of the
        SCM stream (e.g. a `finetune._sources.GeneratorSource`); synthetic
        validation still needs `scm`.

    Returns:
      The `FinetuneResult`.

    Raises:
      ValueError: on missing validation rows, SCM or source, or a checkpoint folder
        that holds another run.
    """
    t_start = time.perf_counter()
    cfg = config
    no_val = X_val is None or y_val is None or len(y_val) == 0
    if cfg.max_steps == 0 and no_val and cfg.validation == "real":
        # zero-shot without validation rows: nothing to train or to evaluate
        net = tfm if isinstance(tfm, Network) else network_of(tfm)
        net.module.eval()
        seconds = time.perf_counter() - t_start
        return FinetuneResult(net, [], [], 0, float("nan"), "no_steps", seconds)
    if cfg.validation != "synthetic" and no_val:
        raise ValueError(f"validation={cfg.validation!r} needs real validation rows")
    has_scm = scm is not None and selection is not None
    if cfg.validation != "real" and not has_scm:
        raise ValueError(
            f"validation={cfg.validation!r} draws its rows from an SCM ensemble, but "
            "no SCM ensemble (with its selection) was given"
        )
    if cfg.max_ratio > 0 and not has_scm and source is None:
        raise ValueError(
            "this configuration draws synthetic rows (ratio > 0) but no SCM ensemble "
            "(with its selection) and no synthetic source was given"
        )
    loop = _Loop(
        tfm if isinstance(tfm, Network) else network_of(tfm),
        X,
        y,
        cfg,
        n_classes=n_classes,
        categorical=list(categorical or []),
        val=(X_val, y_val),
        test=(X_test, y_test),
        scm=scm,
        rows=selection,
        callback=callback,
        source=source,
    )
    return loop.run(t_start)


@dataclasses.dataclass
class _State:
    """What a checkpoint holds besides the weights: records and early stopping."""

    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    steps: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    best: dict[str, torch.Tensor] | None = None
    best_step: int = 0
    best_score: float = -math.inf
    bad: int = 0
    step: int = 0
    stop_reason: str = ""


class _Loop:
    """One run of `finetune`, in pieces a reader takes one at a time.

    In the spirit of TabPFN's `finetuned_base` hooks: `run` drives; `stop_rule`
    (max steps, time limit), `train_step` (meta-batch -> loss -> AdamW step),
    `synthetic` (the step's rows, the next step's dispatched ahead), `evaluate`
    (validation and test scores), `record_eval` (best weights, patience) and
    `resume` / `save` (the checkpoint) each do one thing.
    """

    def __init__(
        self,
        net: Network,
        X: np.ndarray,
        y: np.ndarray,
        cfg: FinetuneConfig,
        *,
        n_classes: int,
        categorical: list[int],
        val: tuple[np.ndarray | None, np.ndarray | None],
        test: tuple[np.ndarray | None, np.ndarray | None],
        scm: Any,
        rows: Any,
        callback: Callable[[dict[str, Any]], Any] | None,
        source: SyntheticSource | None = None,
    ):
        import jax

        self.net, self.X, self.y, self.cfg = net, X, y, cfg
        self.n_classes, self.categorical = n_classes, categorical
        self.X_val, self.y_val = val
        self.X_test, self.y_test = test
        self.scm, self.rows, self.callback = scm, rows, callback
        key = jax.random.key(cfg.seed)
        self.stream_key, val_key = (
            jax.random.fold_in(key, 0),
            jax.random.fold_in(key, 1),
        )
        self.syn_val = None
        if cfg.validation != "real":
            src = SyntheticRows(
                val_key, scm, rows, cfg.n_synthetic_val, members="pooled"
            )
            self.syn_val = src.draw(
                np.random.default_rng([cfg.seed, 1 << 30]), cfg.n_synthetic_val
            )
        freeze_unused(net.module)
        self.params = [p for p in net.module.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(
            self.params, lr=cfg.lr, weight_decay=cfg.weight_decay
        )
        self.train_clf = make_classifier(
            net,
            n_estimators=cfg.n_estimators_train,
            categorical=categorical,
            device=cfg.device,
            seed=cfg.seed,
            batched=True,
        )
        self.fingerprint = _fingerprint(
            cfg,
            X,
            y,
            self.X_val,
            self.y_val,
            extra=None if source is None else source.describe(),
        )
        self.state = _State()
        self.given = source  # a generator's source; None: the SCM stream
        self.source: SyntheticSource | None = None

    def run(self, t_start: float) -> FinetuneResult:
        """Resumes or starts, trains until the stop rule fires, restores the best."""
        self.t_start = t_start
        self.resume()
        cfg, st = self.cfg, self.state
        if not st.history:
            self.record_eval(0)
        max_syn = int(round(cfg.max_ratio * len(self.y)))
        if max_syn > 0 and not st.stop_reason:
            self.source = self.given or ScmSource(self.scm_stream(max_syn))
        self.net.module.train()
        while not st.stop_reason:
            st.stop_reason = self.stop_rule()
            if st.stop_reason:
                break
            self.train_step()
            if st.step % cfg.eval_every == 0 or st.step == cfg.max_steps:
                if self.record_eval(st.step):
                    st.stop_reason = "early_stopping"
            if st.step % cfg.checkpoint_every == 0 and not st.stop_reason:
                self.save("")
        if st.history[-1]["step"] != st.step and st.stop_reason == "time_limit":
            self.record_eval(st.step)
        if st.best is not None:
            self.net.module.load_state_dict(st.best)
        self.net.module.eval()
        self.save(st.stop_reason)
        return FinetuneResult(
            self.net,
            st.history,
            st.steps,
            st.best_step,
            st.best_score,
            st.stop_reason,
            time.perf_counter() - t_start,
        )

    def scm_stream(self, max_syn: int) -> SyntheticRows:
        """The SCM stream of the training steps (class-targeted on request)."""
        cfg, start = self.cfg, self.state.step
        if cfg.synthetic_classes is None:
            return SyntheticRows(
                self.stream_key,
                self.scm,
                self.rows,
                max_syn,
                members=cfg.members,
                start=start,
            )
        return ClassRows(
            self.stream_key,
            self.scm,
            self.rows,
            max_syn,
            request=cfg.synthetic_classes,
            start=start,
        )

    def stop_rule(self) -> str:
        """Why the run stops before the next step ("" to go on)."""
        cfg, steps = self.cfg, self.state.steps
        if self.state.step >= cfg.max_steps:
            return "max_steps" if cfg.max_steps else "no_steps"
        elapsed = time.perf_counter() - self.t_start
        mean_step = (
            float(np.mean([s["seconds"] for s in steps[-10:]])) if steps else 0.0
        )
        if cfg.time_limit is not None and elapsed + mean_step > cfg.time_limit:
            return "time_limit"
        return ""

    def train_step(self) -> None:
        """One meta-batch -> query loss -> AdamW step; appends the step's record."""
        cfg, st = self.cfg, self.state
        step = st.step
        t0 = time.perf_counter()
        rng = np.random.default_rng([cfg.seed, step])
        ratio = ratio_at(
            step, cfg.max_steps, cfg.ratio, cfg.ratio_end, cfg.ratio_schedule
        )
        Xs, ys = self.synthetic(step, int(round(ratio * len(self.y))))
        t_syn = time.perf_counter() - t0
        mb = build_meta_batch(
            rng,
            self.X,
            self.y,
            Xs,
            ys,
            query_fraction=cfg.query_fraction,
            placement=cfg.placement,
            use_real=cfg.use_real,
        )
        lr = lr_at(step, cfg)
        for g in self.opt.param_groups:
            g["lr"] = lr
        self.opt.zero_grad()
        loss = query_loss(
            self.train_clf,
            mb.X_context,
            mb.y_context,
            mb.X_query,
            mb.y_query,
            seed=cfg.seed if cfg.fixed_preprocessing else _step_seed(cfg.seed, step),
        )
        loss.backward()
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
        self.opt.step()
        st.step = step + 1
        self._emit(
            st.steps,
            {
                "kind": "step",
                "step": st.step,
                "loss": float(loss.detach()),
                "lr": lr,
                "ratio": ratio,
                "n_real": int(
                    np.sum(~mb.synthetic_context) + np.sum(~mb.synthetic_query)
                ),
                "n_synthetic": mb.n_synthetic,
                "synthetic_share": mb.synthetic_share,
                "seconds": time.perf_counter() - t0,
                "synthetic_seconds": t_syn,
                **self.class_counts(ys),
            },
        )

    def class_counts(self, ys: np.ndarray) -> dict[str, Any]:
        """{"synthetic_counts": rows per class} with a class request, else {}."""
        if self.cfg.synthetic_classes is None:  # records as before the option
            return {}
        return {"synthetic_counts": np.bincount(ys, minlength=self.n_classes).tolist()}

    def synthetic(self, step: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Step `step`'s `n` synthetic rows; dispatches the next step's before."""
        if self.source is None:
            return self.X[:0], self.y[:0]
        Xs, ys = self.source.draw(step, n, _pool_rng(self.cfg.seed, step))
        if step + 1 < self.cfg.max_steps:  # the SCM stream samples while torch trains
            self.source.ahead(step + 1, _pool_rng(self.cfg.seed, step + 1))
        return Xs, ys

    def evaluate(self) -> dict[str, Any]:
        """Validation (real and/or synthetic) and test scores, and `val_score`."""
        cfg, X, y, n_classes = self.cfg, self.X, self.y, self.n_classes
        kw = dict(
            n_estimators=cfg.n_estimators,
            categorical=self.categorical,
            device=cfg.device,
            seed=cfg.seed,
        )
        rec: dict[str, Any] = {}
        parts = []
        if cfg.validation in ("real", "both"):
            p = predict_proba(self.net, X, y, self.X_val, n_classes, **kw)
            rec.update(scores(self.y_val, p, "val"))
            parts.append(rec["val_" + cfg.eval_metric])
        if self.syn_val is not None:
            p = predict_proba(self.net, X, y, self.syn_val[0], n_classes, **kw)
            rec.update(scores(self.syn_val[1], p, "val_synthetic"))
            parts.append(rec["val_synthetic_" + cfg.eval_metric])
        if self.X_test is not None and self.y_test is not None:
            p = predict_proba(self.net, X, y, self.X_test, n_classes, **kw)
            rec.update(scores(self.y_test, p, "test"))
        score = float(np.mean(parts))
        rec["val_score"] = -score if cfg.eval_metric == "log_loss" else score
        return rec

    def record_eval(self, step: int) -> bool:
        """Evaluates, updates the best state; True when patience has run out."""
        cfg, st = self.cfg, self.state
        last = st.history[-1]["step"] if st.history else 0
        since = [s["loss"] for s in st.steps if s["step"] > last]
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
            "synthetic_share": st.steps[-1]["synthetic_share"] if st.steps else 0.0,
            **self.evaluate(),
            "seconds": time.perf_counter() - self.t_start,
        }
        self._emit(st.history, rec)
        if rec["val_score"] > st.best_score + cfg.min_delta or not math.isfinite(
            st.best_score
        ):
            st.best, st.best_step, st.best_score = (
                self.net.state_dict(),
                step,
                rec["val_score"],
            )
            st.bad = 0
            return False
        st.bad += 1
        return cfg.patience is not None and st.bad >= cfg.patience

    def _emit(self, records: list[dict[str, Any]], rec: dict[str, Any]) -> None:
        records.append(rec)
        if self.callback is not None:
            self.callback(rec)

    def resume(self) -> None:
        """Loads the checkpoint of this run, if `checkpoint_dir` holds one.

        Raises:
          ValueError: when the checkpoint belongs to another run.
        """
        cfg = self.cfg
        ckpt = _checkpoint.load(cfg.checkpoint_dir) if cfg.checkpoint_dir else None
        if ckpt is None:
            return
        if ckpt["fingerprint"] != self.fingerprint:
            raise ValueError(
                f"the checkpoint in {cfg.checkpoint_dir} belongs to a run with "
                "other data or options; use another checkpoint_dir or delete it to "
                "start afresh"
            )
        self.net.module.load_state_dict(ckpt["weights"])
        self.opt.load_state_dict(ckpt["optimizer"])
        self.state = _State(
            history=ckpt["history"],
            steps=ckpt["steps"],
            best=ckpt["best"],
            best_step=ckpt["best_step"],
            best_score=ckpt["best_score"],
            bad=ckpt["bad"],
            step=ckpt["step"],
            stop_reason=ckpt["stop_reason"],
        )

    def save(self, reason: str) -> None:
        """Writes the checkpoint (when `checkpoint_dir` is set)."""
        cfg, st = self.cfg, self.state
        if not cfg.checkpoint_dir:
            return
        _checkpoint.save(
            cfg.checkpoint_dir,
            step=st.step,
            weights=self.net.state_dict(),
            best=st.best,
            optimizer=self.opt.state_dict(),
            state={
                "fingerprint": self.fingerprint,
                "history": st.history,
                "steps": st.steps,
                "best_step": st.best_step,
                "best_score": st.best_score,
                "bad": st.bad,
                "stop_reason": reason,
            },
        )


def _pool_rng(seed: int, step: int) -> np.random.Generator:
    """The generator that pools step `step`'s synthetic rows."""
    return np.random.default_rng([seed, step, 1])


def _normalise(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1.0)
    return p / p.sum(axis=1, keepdims=True)


def _fingerprint(
    cfg: FinetuneConfig, *arrays: Any, extra: dict[str, Any] | None = None
) -> str:
    h = hashlib.sha256(json.dumps(cfg.fingerprint(), sort_keys=True).encode())
    for a in arrays:
        h.update(b"|" if a is None else np.ascontiguousarray(a).tobytes())
    if extra is not None:  # a generator's source (the SCM path hashes as before)
        h.update(json.dumps(extra, sort_keys=True, default=repr).encode())
    return h.hexdigest()
