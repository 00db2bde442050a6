"""Pre-training a small TabPFN-architecture model on jaxscm's random-SCM prior.

The model is one of the architectures the `tabpfn` package builds itself (so the
result loads with `TabPFNClassifier(model_path=...)`); only its weights are ours.
Each step draws a fresh batch of datasets from `jaxscm.prior` (jit + vmap, compiled
once), hands it to torch zero-copy through `bridge.to_torch`, splits every dataset
into context and query rows at a random point and minimises the cross-entropy of the
query labels. The next batch is dispatched to JAX before the torch step runs, so
generation overlaps training.

Resumable: `state.pt` in the output directory holds model, optimizer, step, prior key
and the loss history (written atomically, read back with `torch.load(weights_only=
True)`, so nothing is unpickled). Every save also exports a TabPFN checkpoint
(`model.safetensors`, plus `export` if given) and the loss curve (CSV + PNG).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from bridge import to_torch
from jaxscm import atomic_write
from jaxscm.prior import PRIOR_V2, PriorConfig, sample_prior

STATE_FILE = "state.pt"
MODEL_FILE = "model.safetensors"
CURVE_CSV = "loss_curve.csv"
CURVE_PNG = "loss_curve.png"

_V35_TINY = dict(
    embed_dim=32,
    dist_embed_num_blocks=1,
    dist_embed_num_heads=4,
    dist_embed_num_inducing_points=16,
    feat_agg_num_blocks=1,
    feat_agg_num_heads=4,
    feat_agg_num_cls_tokens=4,
    nlayers=2,
    icl_num_heads=4,
    decoder_head_dim=16,
    decoder_num_heads=2,
    num_buckets=100,
)

# Small configurations of the package's own architectures (measured on CPU, see the
# model card). "v3.5-tiny" is the default: as fast per step as "v2-tiny" here, with
# 3x the parameters, and it predicted better after the same short run. The "-4l" /
# "-6l" presets are v3.5-tiny with more in-context layers: the first two have
# v3.5-tiny's names and shapes, so `init_from` can grow the tiny checkpoint (tabpfn
# zero-initialises each block's output projections, so new blocks start as identity).
ARCH_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "v2-tiny": ("tabpfn_v2", dict(emsize=64, nlayers=2, nhead=2, features_per_group=2)),
    "v2-small": (
        "tabpfn_v2",
        dict(emsize=96, nlayers=3, nhead=4, features_per_group=2),
    ),
    "v2-micro": (
        "tabpfn_v2",
        dict(emsize=16, nlayers=1, nhead=2, features_per_group=2),
    ),
    "v3.5-tiny": ("tabpfn_v3_5", _V35_TINY),
    "v3.5-tiny-4l": ("tabpfn_v3_5", dict(_V35_TINY, nlayers=4)),
    "v3.5-tiny-6l": ("tabpfn_v3_5", dict(_V35_TINY, nlayers=6)),
    "v3.5-small": (
        "tabpfn_v3_5",
        dict(
            _V35_TINY,
            embed_dim=48,
            dist_embed_num_heads=4,
            dist_embed_num_inducing_points=32,
            nlayers=4,
            icl_num_heads=8,
            decoder_head_dim=24,
        ),
    ),
}


def pretrain_prior(
    rows: int,
    max_features: int | None,
    max_classes: int,
    prior: str = "v1",
) -> PriorConfig:
    """The prior of a pre-training run: graphs larger than the widest table.

    Args:
      rows: most rows per dataset.
      max_features: most feature columns per dataset (None: the prior's own, 16
        for v1 and `PRIOR_V2.max_features` for v2).
      max_classes: most classes per dataset.
      prior: "v1" (the first default checkpoint's prior) or "v2" (`PRIOR_V2`:
        wide tables, 20-level and ordinal categoricals, rare classes, more
        missing cells).

    Returns:
      A `PriorConfig` whose graphs have at least 24 nodes (v1: 8 more than the
      widest table; v2: 12 more), so that even narrow tables come from graphs
      with hidden causes.

    Raises:
      ValueError: for an unknown `prior`.
    """
    if prior == "v1":
        width = 16 if max_features is None else max_features
        return PriorConfig(
            n_rows=rows,
            n_nodes=max(24, width + 8),
            max_features=width,
            max_classes=max_classes,
        )
    if prior != "v2":
        raise ValueError(f"prior must be 'v1' or 'v2', got {prior!r}")
    width = PRIOR_V2.max_features if max_features is None else max_features
    return dataclasses.replace(
        PRIOR_V2,
        n_rows=rows,
        n_nodes=max(PRIOR_V2.n_nodes, width + 12),
        max_features=width,
        min_features=min(PRIOR_V2.min_features, width),
        max_classes=max_classes,
    )


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """Options of a pre-training run (all JSON-serialisable, stored in the state).

    Attributes:
      steps: total optimisation steps (the learning-rate schedule spans these).
      arch: a key of `ARCH_PRESETS`.
      batch_size: datasets per step.
      min_rows: fewest rows (context + query) per step; the most is prior.n_rows.
      lr: peak AdamW learning rate; linear warm-up, then cosine decay to lr/10.
      warmup: warm-up steps.
      weight_decay: AdamW weight decay.
      grad_clip: gradient-norm clip.
      seed: seeds the prior key, the host RNG and the model initialisation.
      save_every: steps between checkpoints.
      prior: the prior's settings.
      step_features: "max": a step's batch has as many columns as its widest
        dataset; "log": each step also draws a column cap log-uniform in
        [2, prior.max_features] and datasets keep their first min(n_features, cap)
        columns (a random subset: the prior shuffles them), so wide steps, which
        cost the most, are rarer and small tables are common.
      init_from: a TabPFN checkpoint whose parameters with matching names and shapes
        initialise the model (e.g. the shipped tiny one, to grow it); None: random.
      max_features_per_estimator: if set, written into the exported inference
        config, so tabpfn subsamples wider tables per estimator to the width the
        model was trained on; None keeps tabpfn's default (500).
    """

    steps: int
    arch: str = "v3.5-tiny"
    batch_size: int = 8
    min_rows: int = 64
    lr: float = 3e-4
    warmup: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    save_every: int = 200
    prior: PriorConfig = PriorConfig(n_rows=384)
    step_features: str = "max"
    init_from: str | None = None
    max_features_per_estimator: int | None = None

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.arch not in ARCH_PRESETS:
            raise ValueError(
                f"unknown arch {self.arch!r}; choose from {sorted(ARCH_PRESETS)}"
            )
        if not 4 <= self.min_rows <= self.prior.n_rows:
            raise ValueError(
                f"min_rows must be in [4, prior.n_rows={self.prior.n_rows}], "
                f"got {self.min_rows}"
            )
        if self.batch_size < 1 or self.save_every < 1:
            raise ValueError("batch_size and save_every must be >= 1")
        if self.step_features not in ("max", "log"):
            raise ValueError(
                f"step_features must be 'max' or 'log', got {self.step_features!r}"
            )
        if self.init_from is not None and not Path(self.init_from).is_file():
            raise ValueError(
                f"init_from: no checkpoint file at {self.init_from}; pass a TabPFN "
                "checkpoint path (e.g. finetune/checkpoints/*.safetensors) or None"
            )

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PretrainConfig:
        d = dict(d)
        d["prior"] = PriorConfig(**d["prior"])
        return cls(**d)


def build_model(config: PretrainConfig) -> tuple[torch.nn.Module, Any, str]:
    """Builds the (randomly initialised) tabpfn architecture named by `config.arch`."""
    from tabpfn.architectures import ARCHITECTURES

    arch_name, kwargs = ARCH_PRESETS[config.arch]
    module = ARCHITECTURES[arch_name]
    cfg, _unused = module.parse_config(
        dict(kwargs, max_num_classes=config.prior.max_classes, seed=config.seed)
    )
    torch.manual_seed(
        config.seed
    )  # the one place model init draws; resume overwrites it
    return module.get_architecture(cfg), cfg, arch_name


def init_from_checkpoint(model: torch.nn.Module, path: str | os.PathLike[str]) -> int:
    """Copies a TabPFN checkpoint's tensors into `model` where names and shapes match.

    Returns:
      The number of tensors copied; the others keep their initialisation.

    Raises:
      ValueError: when no tensor matches (a different architecture).
    """
    from tabpfn.checkpoint import Checkpoint

    source = Checkpoint(Path(path)).load()["state_dict"]
    own = model.state_dict()
    match = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    if not match:
        raise ValueError(
            f"init_from: no parameter of {path} matches the architecture being "
            "trained; pick an --arch of the same family (see ARCH_PRESETS)"
        )
    model.load_state_dict(match, strict=False)
    return len(match)


def tabpfn_checkpoint(
    model: torch.nn.Module,
    arch_cfg: Any,
    arch_name: str,
    max_features_per_estimator: int | None = None,
) -> dict[str, Any]:
    """The dict `tabpfn.checkpoint.save_as_safetensors` writes and tabpfn loads."""
    from tabpfn.constants import ModelVersion
    from tabpfn.inference_config import InferenceConfig

    version = ModelVersion.V2 if arch_name == "tabpfn_v2" else ModelVersion.V2_5
    inference = dataclasses.asdict(InferenceConfig.get_default("multiclass", version))
    if max_features_per_estimator is not None:
        for transform in inference["PREPROCESS_TRANSFORMS"]:
            transform["max_features_per_estimator"] = max_features_per_estimator
    return {
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "config": dataclasses.asdict(arch_cfg),
        "architecture_name": arch_name,
        "inference_config": inference,
    }


def export_checkpoint(ckpt: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Writes a TabPFN safetensors checkpoint atomically (`jaxscm.atomic_write`)."""
    from tabpfn.checkpoint import save_as_safetensors

    # safetensors writes by name and creates 0600; atomic_write then gives the file
    # the umask permissions, so the shipped checkpoint is readable.
    with atomic_write(path) as f:
        save_as_safetensors(ckpt, f.name)


def _lr(config: PretrainConfig, step: int) -> float:
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    frac = min(1.0, (step - config.warmup) / max(1, config.steps - config.warmup))
    return config.lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * frac)))


def _split(config: PretrainConfig, step: int) -> tuple[int, int, int]:
    """Rows, context size and column cap of a step, from a host RNG on (seed, step)."""
    rng = np.random.default_rng([config.seed, step])
    rows = int(rng.integers(config.min_rows, config.prior.n_rows + 1))
    ctx = int(rng.integers(max(2, int(0.3 * rows)), int(0.9 * rows) + 1))
    f = config.prior.max_features
    cap = f
    if config.step_features == "log":  # drawn last: "max" runs keep their splits
        cap = int(np.exp(rng.uniform(np.log(min(2, f)), np.log(f + 1))))
    return rows, min(ctx, rows - 1), max(1, min(cap, f))


def loss_on_batch(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    n_classes: torch.Tensor,
    ctx: int,
    max_classes: int,
) -> torch.Tensor:
    """Query cross-entropy of a prior batch: x (b, n, f), y (b, n), `ctx` context rows.

    Logits of classes a dataset does not have are masked out, so every dataset is a
    proper k-class problem.
    """
    x_rbf = x.permute(1, 0, 2)
    y_rb = y.permute(1, 0).to(torch.float32)
    out = model(
        x_rbf, y_rb[:ctx], only_return_standard_out=True, task_type="multiclass"
    )
    logits = out[..., :max_classes]  # (q, b, c)
    absent = torch.arange(max_classes)[None, :] >= n_classes[:, None]  # (b, c)
    logits = logits.masked_fill(absent[None], float("-inf"))
    return F.cross_entropy(
        logits.reshape(-1, max_classes), y[:, ctx:].T.reshape(-1).long()
    )


def save_state(out: Path, state: dict[str, Any]) -> None:
    """Atomically writes the resumable training state."""
    with atomic_write(out / STATE_FILE) as f:
        torch.save(state, f)


def load_state(out: Path) -> dict[str, Any] | None:
    """Reads the training state, never unpickling objects (weights_only)."""
    path = out / STATE_FILE
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


def write_curve(out: Path, history: list[list[float]]) -> None:
    """Loss curve as CSV (step, loss, lr, seconds) and a PNG with a moving average."""
    with atomic_write(out / CURVE_CSV, "w") as fh:
        fh.write("step,loss,lr,wall_s\n")
        for step, loss, lr, wall in history:
            fh.write(f"{int(step)},{loss:.5f},{lr:.3e},{wall:.1f}\n")
    if len(history) < 2:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = np.asarray(history)
    w = max(1, min(100, len(h) // 10))
    smooth = np.convolve(h[:, 1], np.ones(w) / w, mode="valid")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(h[:, 0], h[:, 1], lw=0.3, alpha=0.4, label="per step")
    ax.plot(h[w - 1 :, 0], smooth, lw=1.5, label=f"mean of {w}")
    ax.set_xlabel("step")
    ax.set_ylabel("query cross-entropy")
    ax.legend()
    fig.tight_layout()
    try:
        with atomic_write(out / CURVE_PNG) as f:
            fig.savefig(f, format="png", dpi=110)
    finally:
        plt.close(fig)


def pretrain(
    config: PretrainConfig,
    out: str | os.PathLike[str],
    *,
    resume: bool = False,
    time_limit: float | None = None,
    export: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Pre-trains (or resumes) a model on the prior; returns a run summary.

    Args:
      config: run options.
      out: output directory (state, TabPFN checkpoint, loss curve).
      resume: continue from `out/state.pt` if it exists (its config must match).
      time_limit: stop (after saving) once this many seconds of this call have passed.
      export: also write the TabPFN checkpoint here at every save.
      progress: show a tqdm progress bar (on a terminal only).

    Returns:
      A dict with step, wall seconds (this call and in total), seconds spent waiting
      for prior batches, and the mean loss of the first and last 100 steps.

    Raises:
      ValueError: when resuming with a different configuration.
    """
    from tqdm import tqdm

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model, arch_cfg, arch_name = build_model(config)
    if config.init_from is not None:
        init_from_checkpoint(model, config.init_from)
    opt = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    step, history, wall_before, gen_before = 0, [], 0.0, 0.0
    state = load_state(out) if resume else None
    if state is not None:
        saved = PretrainConfig.from_json(json.loads(state["config"]))
        if dataclasses.replace(saved, steps=config.steps) != config:
            raise ValueError(
                f"{out / STATE_FILE} was written with a different configuration "
                f"({saved}); pass the same options (only --steps may change) "
                "or a new --out"
            )
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, history = int(state["step"]), [list(r) for r in state["history"]]
        wall_before, gen_before = float(state["wall_s"]), float(state["gen_s"])

    key = jax.random.key(config.seed)
    gen = jax.jit(sample_prior, static_argnums=(1, 2))
    prior, b = config.prior, config.batch_size
    t0 = time.perf_counter()
    gen_s = 0.0

    def save() -> None:
        wall = wall_before + time.perf_counter() - t0
        save_state(
            out,
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "step": step,
                "key": torch.from_numpy(np.asarray(jax.random.key_data(key)).copy()),
                "config": json.dumps(config.to_json()),
                "history": history,
                "wall_s": wall,
                "gen_s": gen_before + gen_s,
            },
        )
        ckpt = tabpfn_checkpoint(
            model, arch_cfg, arch_name, config.max_features_per_estimator
        )
        export_checkpoint(ckpt, out / MODEL_FILE)
        if export is not None:
            export_checkpoint(ckpt, export)
        write_curve(out, history)

    tc = time.perf_counter()
    pending = (
        gen(jax.random.fold_in(key, step), b, prior) if step < config.steps else None
    )
    jax.block_until_ready(pending)
    compile_s = time.perf_counter() - tc  # jit of the prior (and the first batch)
    # disable=None: no bar when stderr is not a terminal (logs, pipes)
    bar = tqdm(
        total=config.steps,
        initial=step,
        disable=None if progress else True,
        mininterval=10,
    )
    model.train()
    while step < config.steps:
        tg = time.perf_counter()
        batch = jax.block_until_ready(pending)
        rows, ctx, cap = _split(config, step)
        nf = min(cap, max(1, int(np.asarray(batch.n_features).max())))
        x = to_torch(batch.x)[:, :rows, :nf]
        y = to_torch(batch.y)[:, :rows]
        n_classes = to_torch(batch.n_classes).long()
        if step + 1 < config.steps:  # overlap: JAX computes the next batch meanwhile
            pending = gen(jax.random.fold_in(key, step + 1), b, prior)
        gen_s += time.perf_counter() - tg

        lr = _lr(config, step)
        for g in opt.param_groups:
            g["lr"] = lr
        loss = loss_on_batch(model, x, y, n_classes, ctx, prior.max_classes)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        step += 1
        elapsed = time.perf_counter() - t0
        history.append([step, loss.item(), lr, wall_before + elapsed])
        bar.update(1)
        if step % 20 == 0:
            recent = np.mean([r[1] for r in history[-100:]])
            bar.set_postfix(loss=f"{recent:.4f}", gen=f"{gen_s / elapsed:.1%}")
        out_of_time = time_limit is not None and elapsed >= time_limit
        if step % config.save_every == 0 or step == config.steps or out_of_time:
            save()
        if out_of_time:
            break
    bar.close()
    if not history or history[-1][0] != step:
        save()
    wall = time.perf_counter() - t0
    losses = [r[1] for r in history]
    return {
        "step": step,
        "wall_s": wall,
        "total_wall_s": wall_before + wall,
        "prior_compile_s": compile_s,
        "gen_wait_s": gen_s,
        "gen_share": gen_s / wall if wall > 0 else 0.0,
        "first100_loss": float(np.mean(losses[:100])) if losses else math.nan,
        "last100_loss": float(np.mean(losses[-100:])) if losses else math.nan,
    }


def heldout_loss(
    checkpoint: str | os.PathLike[str],
    prior: PriorConfig,
    *,
    n_datasets: int = 32,
    rows: int = 256,
    ctx: int = 128,
    seed: int = 12345,
) -> dict[str, float]:
    """Query cross-entropy and accuracy of a checkpoint on a held-out prior batch.

    The batch is `sample_prior(key(seed), n_datasets, prior)` cut to `rows` rows
    (the first `ctx` of them context), a key the training runs never use (they fold
    step numbers into their own seed's key). It compares runs on the same data.

    Returns:
      loss (nats), accuracy, and the context class-frequency baseline's loss.
    """
    from tabpfn.architectures import ARCHITECTURES
    from tabpfn.checkpoint import Checkpoint

    if not 2 <= ctx < rows <= prior.n_rows:
        raise ValueError(f"need 2 <= ctx < rows <= prior.n_rows, got {ctx}, {rows}")
    ckpt = Checkpoint(Path(checkpoint)).load()
    module = ARCHITECTURES[ckpt["architecture_name"]]
    cfg, _unused = module.parse_config(ckpt["config"])
    model = module.get_architecture(cfg)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    batch = jax.jit(sample_prior, static_argnums=(1, 2))(
        jax.random.key(seed), n_datasets, prior
    )
    x = torch.from_numpy(np.asarray(batch.x)[:, :rows].copy())
    y = torch.from_numpy(np.asarray(batch.y)[:, :rows].copy()).long()
    k = torch.from_numpy(np.asarray(batch.n_classes).copy()).long()
    nf = max(1, int(k.new_tensor(np.asarray(batch.n_features)).max()))
    x = x[:, :, :nf]
    kmax = prior.max_classes
    with torch.no_grad():
        out = model(
            x.permute(1, 0, 2),
            y[:, :ctx].T.float(),
            only_return_standard_out=True,
            task_type="multiclass",
        )[..., :kmax]
        absent = torch.arange(kmax)[None, :] >= k[:, None]
        logits = out.masked_fill(absent[None], float("-inf"))  # (q, b, c)
        yq = y[:, ctx:].T
        loss = F.cross_entropy(logits.reshape(-1, kmax), yq.reshape(-1)).item()
        acc = (logits.argmax(-1) == yq).float().mean().item()
        counts = torch.stack([torch.bincount(yi[:ctx], minlength=kmax) for yi in y])
        freq = (counts.float() + 0.5) / (counts.sum(1, keepdim=True) + 0.5 * k[:, None])
        freq = freq.masked_fill(absent, 0.0)
        base = -torch.log(freq.gather(1, yq.T)).mean().item()
    return {"loss": loss, "accuracy": acc, "baseline_loss": base}
