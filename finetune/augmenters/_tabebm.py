"""`tabebm`: TabEBM (Margeloiu et al., NeurIPS 2024), written by us over our TFM.

TabEBM turns a tabular foundation model into one energy-based model per class:

1. the features are standardised (mean and standard deviation of the training
   table, all classes, so every class shares one frame);
2. per class c, a binary task: the real rows of c (label 0) against `n_negatives`
   surrogate negatives at corners of the hypercube [-corner, corner]^d (label 1;
   random signs drawn from the fit seed, shared by all classes); the TFM is
   fitted on it in context (the task is the network's context);
3. the energy of a point x is E_c(x) = -logsumexp of the task's logits at x;
4. rows of class c are drawn by SGLD from real rows of c plus N(0, start_noise^2):
   x <- x - step_size * dE_c/dx + noise_std * N(0, 1), for n_steps steps.

The published defaults are ours: 4 negatives at +-5, start noise 0.01, step 0.1,
noise 0.01, 200 steps. The `tabebm` package itself does not run on tabpfn 9.2
and would download weights, so this is our implementation over
`finetune.load_tfm()` (the offline checkpoint unless `tfm` names another).

Where we had to choose (the paper used TabPFN v1 through its own code):

* The network runs directly on the standardised codes, as pre-training feeds it,
  not through TabPFN's preprocessing pipeline (NumPy, so not differentiable in
  the input); the network standardises and ECDF-ranks features against its
  context itself, piecewise linearly, so the gradient reaches the query rows.
  One network, no ensemble of preprocessings (`finetune._tabpfn.class_logits`);
  each class task's context is cached in the network once, at fit.
* The logits. TabPFN v3.5's (our checkpoint's) many-class decoder outputs log
  class probabilities, whose logsumexp is constant (1 + 6e-5 from its clamp): the
  published energy on them is flat and SGLD would be a random walk. So the energy
  uses the decoder's unnormalised logits: per head h, u_hk(x) = logsumexp of the
  attention scores between x and the context rows of class k, whose softmax over
  k is that head's class probability (the output is the log of the heads' mean
  of those). E_c(x) = -mean over heads of logsumexp_k u_hk(x). For a tabpfn v2
  network the decoder's logits are unnormalised already and are used as they
  are. `TabEBM.energy` reads E_c; a test checks u against the network's output.
* Categorical features are treated as numbers, as the method does: their
  ordinal codes are standardised, relaxed during SGLD and then snapped to the
  nearest code seen in training. Integer columns snap to the nearest value seen
  in training (so they stay in the observed range). Numeric columns are
  unstandardised and not clipped.

Class requests are exact (`conditional = "conditional"`): every row is drawn by
its own class's model. `sample(n)` draws the training class shares. Each SGLD
step is one forward and backward pass of the TFM per class over its context and
chains, so a pool is drawn once per fine-tuning run (`streaming` False).
`time_limit` bounds a draw's SGLD (then rows are reproducible only if the limit
is never hit; `steps_done_` tells).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from finetune.augmenters._base import Generator, class_codes

_BLOCK = 1024  # chains per TFM call; rows are independent, so only memory changes


class TabEBM(Generator):
    """TabEBM: SGLD on class-specific energies from the TFM's logits.

    Args:
      n_steps: SGLD steps per draw.
      step_size: SGLD step size (the gradient's factor).
      noise_std: standard deviation of the SGLD noise per step.
      start_noise: standard deviation of the noise added to the starting rows.
      corner: the surrogate negatives sit at corners of [-corner, corner]^d (in
        standard deviations of the training table).
      n_negatives: surrogate negatives per class task.
      time_limit: seconds of SGLD per draw; the chains stop after the first step
        that ends past it (None: no limit).
      tfm: the TFM, as `finetune.load_tfm` takes it (None: the shipped default).
      device: the torch device of the TFM and the chains.

    Attributes (after `fit`):
      negatives_: (n_negatives, d) the surrogate negatives (standardised).
      steps_done_: SGLD steps of the last draw (below n_steps when time_limit hit).

    Examples:
      >>> import numpy as np, pandas as pd
      >>> rng = np.random.default_rng(0)
      >>> X = pd.DataFrame({"a": rng.normal(size=40), "c": rng.choice(["u", "v"], 40)})
      >>> gen = TabEBM(n_steps=2).fit(X, X["a"] > 0)
      >>> Xs, ys = gen.sample(6, y="True")
      >>> sorted(set(ys)), list(Xs["c"].cat.categories)
      (['True'], ['u', 'v'])
    """

    name = "tabebm"
    conditional = "conditional"
    streaming = False

    def __init__(
        self,
        *,
        n_steps: int = 200,
        step_size: float = 0.1,
        noise_std: float = 0.01,
        start_noise: float = 0.01,
        corner: float = 5.0,
        n_negatives: int = 4,
        time_limit: float | None = None,
        tfm: Any = None,
        device: str = "cpu",
    ) -> None:
        for name, v in (("n_steps", n_steps), ("n_negatives", n_negatives)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        for name, v in (
            ("step_size", step_size),
            ("noise_std", noise_std),
            ("start_noise", start_noise),
            ("corner", corner),
        ):
            low = 0 if name != "corner" else np.nextafter(0, 1)
            if not _number(v) or v < low:
                bound = "> 0" if name == "corner" else ">= 0"
                raise ValueError(f"{name} must be a finite number {bound}, got {v!r}")
        if time_limit is not None and not (_number(time_limit) and time_limit > 0):
            raise ValueError(
                f"time_limit must be seconds > 0 or None, got {time_limit!r}"
            )
        self.n_steps, self.n_negatives = n_steps, n_negatives
        self.step_size, self.noise_std = float(step_size), float(noise_std)
        self.start_noise, self.corner = float(start_noise), float(corner)
        self.time_limit, self.tfm, self.device = time_limit, tfm, device

    def _fit(self, codes: np.ndarray, seed: int) -> None:
        from finetune._tabpfn import network_of
        from finetune._tfm import load_tfm

        x, y = codes[:, :-1], codes[:, -1].astype(np.int64)
        self._mean, sd = x.mean(axis=0), x.std(axis=0)
        self._scale = np.where(sd > 0, sd, 1.0)
        self._values = [np.unique(x[:, j]) for j in range(x.shape[1])]
        signs = np.random.default_rng([seed, 0]).choice(
            [-1.0, 1.0], size=(self.n_negatives, x.shape[1])
        )
        self.negatives_ = self.corner * signs
        net = network_of(load_tfm(self.tfm, device=self.device))
        net.module.to(self.device).eval()
        for p in net.module.parameters():
            p.requires_grad_(False)  # gradients are taken w.r.t. the inputs only
        self._net = net
        z = self._standardise(x)
        self._tasks = [self._task(z[y == c]) for c in range(len(self.classes_))]

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        return (x - self._mean) / self._scale

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a, np.float32), device=self.device)

    def _task(self, real: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """Class c's binary task: its real rows (label 0), then the negatives (1).

        With the network's cache of it as context, built once: every SGLD step
        then runs the chains alone (`finetune._tabpfn.context_cache`).
        """
        from finetune._tabpfn import context_cache

        labels = np.r_[np.zeros(len(real)), np.ones(self.n_negatives)]
        xc = self._tensor(np.vstack([real, self.negatives_]))
        yc = self._tensor(labels)
        return xc, yc, context_cache(self._net, xc, yc)

    def _energy(self, c: int, z: torch.Tensor) -> torch.Tensor:
        """(m,) E_c at standardised rows z (m, d), differentiable in z."""
        from finetune._tabpfn import class_logits

        xc, yc, cache = self._tasks[c]
        u, _ = class_logits(self._net, xc, yc, z, 2, cache=cache)
        return -torch.logsumexp(u, dim=-1).mean(dim=0)

    def energy(self, X: Any, c: Any) -> np.ndarray:
        """E_c(x) = -logsumexp of class c's task logits, per row (module docstring).

        Args:
          X: rows of the training features: a DataFrame with the feature columns,
            or an (m, d) array of their codes (`Column.code_of`).
          c: a training class label (as in `classes_`).

        Returns:
          (m,) float64 energies (lower: more like class c's real rows).

        Raises:
          RuntimeError: before `fit`.
          ValueError: an unknown class, a missing column, wrong width or
            non-finite codes.
        """
        if not hasattr(self, "_tasks"):
            raise RuntimeError("the tabebm generator is not fitted; call fit")
        labels = class_codes(c, 1, self.classes_, 0)
        assert labels is not None
        z = self._tensor(self._standardise(self._codes(X)))
        with torch.no_grad():
            parts = [
                self._energy(int(labels[0]), z[i : i + _BLOCK])
                for i in range(0, len(z), _BLOCK)
            ]
        return torch.cat(parts).double().cpu().numpy()

    def _codes(self, X: Any) -> np.ndarray:
        cols = self.columns_[:-1]
        if type(X).__module__.startswith("pandas"):
            missing = [c.name for c in cols if c.name not in X.columns]
            if missing:
                raise ValueError(f"X lacks the feature columns {missing}")
            X = np.column_stack(
                [c.code_of(X[c.name].astype(object).to_numpy()) for c in cols]
            )
        x = np.asarray(X, np.float64)
        if x.ndim != 2 or x.shape[1] != len(cols):
            raise ValueError(
                f"X must have {len(cols)} feature columns "
                f"({[c.name for c in cols]}), got shape {x.shape}"
            )
        bad = ~np.isfinite(x).all(axis=0)
        if bad.any():
            raise ValueError(
                f"column {cols[int(np.argmax(bad))].name!r} of X holds missing or "
                "non-finite values; impute them first"
            )
        return x

    def _sample(self, n: int, seed: int, labels: np.ndarray | None) -> np.ndarray:
        labels = self._labels(n, seed, labels)
        rng = self._rng(seed)
        noise = torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))
        chains = {}
        for c in np.unique(labels).tolist():
            real = self._tasks[c][0][: -self.n_negatives]
            if len(real) == 0:
                raise ValueError(
                    f"class {self.classes_[c]!r} has no training rows, so tabebm has "
                    "no real rows to start its chains from; ask for other classes"
                )
            start = real[
                torch.as_tensor(rng.integers(len(real), size=(labels == c).sum()))
            ]
            chains[c] = start + self.start_noise * self._noise(noise, start.shape)
        chains = self._sgld(chains, noise)
        out = np.empty((n, len(self.columns_)))
        for c, z in chains.items():
            out[labels == c, :-1] = self._decode(z.double().cpu().numpy())
        out[:, -1] = labels
        return out

    def _noise(self, gen: torch.Generator, shape: torch.Size) -> torch.Tensor:
        # drawn on the CPU, so a seed gives the same noise on every device
        return torch.randn(shape, generator=gen).to(self.device)

    def _sgld(
        self, chains: dict[int, torch.Tensor], gen: torch.Generator
    ) -> dict[int, torch.Tensor]:
        """Runs every class's chains step by step (so a time limit stops all alike)."""
        t0 = time.perf_counter()
        self.steps_done_ = 0
        for _ in range(self.n_steps):
            for c, z in chains.items():
                chains[c] = self._step(c, z) + self.noise_std * self._noise(
                    gen, z.shape
                )
            self.steps_done_ += 1
            if (
                self.time_limit is not None
                and time.perf_counter() - t0 > self.time_limit
            ):
                break
        return chains

    def _step(self, c: int, z: torch.Tensor) -> torch.Tensor:
        """z - step_size * dE_c/dz, over blocks of chains."""
        out = []
        for i in range(0, len(z), _BLOCK):
            block = z[i : i + _BLOCK].detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self._energy(c, block).sum(), block)
            out.append(block.detach() - self.step_size * grad)
        return torch.cat(out)

    def _decode(self, z: np.ndarray) -> np.ndarray:
        """Unstandardised codes; integer and categorical columns snap to seen values."""
        x = z * self._scale + self._mean
        for j, kind in enumerate(self._kinds()):
            if kind != "numeric":
                x[:, j] = _nearest(self._values[j], x[:, j])
        return x


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)


def _nearest(values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Each of x replaced by the nearest of the sorted `values` (ties: the lower)."""
    top = len(values) - 1
    hi = np.clip(np.searchsorted(values, x), 0, top)
    lo = np.clip(hi - 1, 0, top)
    return np.where(
        np.abs(x - values[lo]) <= np.abs(values[hi] - x), values[lo], values[hi]
    )
