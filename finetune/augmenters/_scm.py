"""`causalmix` / `scm_only`: the jaxscm ensemble of `jaxscm.fit_scm` as a generator.

The model: `jaxscm.fit_scm` on the training rows, in the generator's schema (the
codes `Generator.fit` prepared, target last, with `columns=self.columns_`, so the
ensemble's codes are the schema's codes), `n_dags` graphs (default 8) and the
discovery / mechanism / label / marginal options passed through. As generators the
two names are the same model and draw the same rows for the same seeds; they differ
in the fine-tuning loop only (the estimator's `augment=`): `causalmix` mixes real and
synthetic rows in every meta-batch, `scm_only` fine-tunes on synthetic rows alone.
Sampling is one compiled call, so the loop streams fresh rows every step
(`streaming` True).

Rows are drawn from the pooled members (all members' rows shuffled together), so a
draw is the ensemble's mixture over graphs. Class-conditional rows (`conditional =
"rejection"`) are vectorised rejection inside ONE compiled function
(`bridge._classes`, shared with `causalmixft sample --classes`): the pool is sized
from the model's class shares, measured once at fit on `probe_rows` rows, so a
balanced stream for a 2 % minority class is one compiled call in the common case;
only a class that comes up short makes the pool grow fourfold, for at most
`max_rounds` rounds, then a `ValueError` names the class. `acceptance_` is the share
of drawn rows the last `sample` kept (rows returned / rows drawn in its final round).

What the rows are: exact draws of the model's conditional P(x | y = c) (up to taking
rows without replacement from a finite pool with equal rows per member), whatever the
target's parents. When the target has no parents this conditional is the same as
setting the label (y is then sampled independently of the other roots), so nothing
is lost by rejecting; with the default `LabelOptions` the target's parents are
widened to all its non-descendants, so it usually has parents and rejection is what
gives P(x | y = c) rather than the interventional do(y = c). Without a request,
`sample(n)` returns the model's own classes (class shares calibrated to the training
shares by the default `LabelOptions`).

Determinism: the draw of seed s uses `fold_in(fold_in(key(fit_seed), 1), s)`; the fit
is deterministic per fit seed (`fit_scm`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from bridge._classes import (
    class_rows,
    model_shares,
    n_members,
    pool_size,
    target_of,
)
from finetune.augmenters._base import Generator


class CausalMix(Generator):
    """The jaxscm ensemble of `jaxscm.fit_scm` (module docstring).

    Args:
      n_dags: graphs in the ensemble.
      mechanisms: `fit_scm`'s mechanisms ("fast", "linear", "hgb", "auto").
      discovery: a `jaxscm.DiscoveryOptions` (None: its defaults).
      label: a `jaxscm.LabelOptions` (None: its defaults).
      marginals: a `jaxscm.MarginalOptions` (None: `fit_scm`'s default).
      required, forbidden: (cause, effect) name pairs every / no graph contains.
      n_jobs: worker processes of the fit (None: `fit_scm`'s rule).
      safety: oversampling factor of class requests (>= 1).
      max_rounds: draws before a short class fails (>= 1).
      probe_rows: rows drawn at fit to measure the model's class shares.

    Attributes (after `fit`, besides `Generator`'s):
      model_: the fitted `jaxscm.Ensemble` (its fit record in `model_.info`).
      model_class_share_: the model's class shares on the probe draw.
      acceptance_: rows kept / rows drawn by the last `sample` (None before).
      rounds_: compiled draws the last `sample` needed.

    Examples:
      >>> import numpy as np, pandas as pd
      >>> from jaxscm import DiscoveryOptions
      >>> rng = np.random.default_rng(0)
      >>> a = rng.normal(size=80)
      >>> X = pd.DataFrame({"a": a, "b": a + rng.normal(size=80)})
      >>> gen = CausalMix(n_dags=2, discovery=DiscoveryOptions(n_bootstrap=2))
      >>> Xs, ys = gen.fit(X, np.where(a > 1, "p", "n")).sample(8, y="balanced")
      >>> sorted(ys.value_counts().tolist()), 0 < gen.acceptance_ <= 1
      ([4, 4], True)
    """

    name = "causalmix"
    conditional = "rejection"
    streaming = True

    def __init__(
        self,
        *,
        n_dags: int = 8,
        mechanisms: str = "fast",
        discovery: Any = None,
        label: Any = None,
        marginals: Any = None,
        required: Iterable[tuple[str, str]] = (),
        forbidden: Iterable[tuple[str, str]] = (),
        n_jobs: int | None = None,
        safety: float = 1.25,
        max_rounds: int = 3,
        probe_rows: int = 4096,
    ) -> None:
        for what, v, lo in (("n_dags", n_dags, 1), ("max_rounds", max_rounds, 1)):
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise ValueError(f"{what} must be an integer >= {lo}, got {v!r}")
        if not isinstance(probe_rows, int) or probe_rows < 64:
            raise ValueError(f"probe_rows must be an integer >= 64, got {probe_rows!r}")
        if not isinstance(safety, (int, float)) or not 1 <= safety < 100:
            raise ValueError(f"safety must be a number in [1, 100), got {safety!r}")
        self.n_dags, self.mechanisms, self.n_jobs = n_dags, mechanisms, n_jobs
        self.discovery, self.label, self.marginals = discovery, label, marginals
        self.required, self.forbidden = tuple(required), tuple(forbidden)
        self.safety, self.max_rounds = float(safety), max_rounds
        self.probe_rows = probe_rows
        self.acceptance_: float | None = None
        self.rounds_ = 0

    def _fit(self, codes: np.ndarray, seed: int) -> None:

        from jaxscm import fit_scm

        self.model_ = fit_scm(
            codes,
            columns=self.columns_,
            n_dags=self.n_dags,
            seed=seed,
            discovery=self.discovery,
            required=self.required,
            forbidden=self.forbidden,
            mechanisms=self.mechanisms,
            label=self.label,
            marginals=self.marginals,
            progress=False,
            n_jobs=self.n_jobs,
        )
        self._use(seed)

    @classmethod
    def from_model(cls, model: Any, *, seed: int = 0, **options: Any) -> CausalMix:
        """A fitted generator over an already fitted model, without refitting.

        E.g. an ensemble loaded with `jaxscm.fitting.load_fit`, or any `jaxscm`
        model whose columns flag one categorical target. `class_share_` is then
        the model's own class share (`model_class_share_`: a model does not
        record its training shares) and `n_train_` the fit record's rows (0
        without one).

        Args:
          model: a `jaxscm.Ensemble` or `SCM`.
          seed: the seed the draws derive from (as a fit seed).
          **options: the class's options (the fit options are ignored).

        Raises:
          ValueError: the model has no categorical target column.
        """
        t, _ = target_of(model)
        cols = tuple(model.columns)
        gen = cls(**options)
        gen.columns_ = (*cols[:t], *cols[t + 1 :], cols[t])
        gen.classes_ = cols[t].categories
        gen.n_train_ = int(getattr(getattr(model, "info", None), "n_rows", 0))
        gen._feature_names = [c.name for c in gen.columns_[:-1]]
        gen.seed_ = int(seed)
        gen.model_ = model
        gen._use(int(seed))
        gen.class_share_ = gen.model_class_share_
        return gen

    def _use(self, seed: int) -> None:
        """Column maps, keys and the probe of the model's class shares."""
        import jax

        names = [c.name for c in self.model_.columns]
        # the model's columns -> the schema's order (identical unless fit_scm reorders)
        self._order = np.array([names.index(c.name) for c in self.columns_])
        self._k = n_members(self.model_)
        self._key = jax.random.fold_in(jax.random.key(seed), 1)
        key = jax.random.fold_in(jax.random.key(seed), 2)
        self.model_class_share_ = model_shares(key, self.model_, self.probe_rows)

    def _sample(self, n: int, seed: int, labels: np.ndarray | None) -> np.ndarray:
        import jax

        key = jax.random.fold_in(self._key, int(seed) % (1 << 32))
        asked = None
        if labels is not None:
            asked = np.bincount(labels, minlength=len(self.classes_))
        per = pool_size(
            asked,
            n,
            self.model_class_share_,
            self._k,
            safety=self.safety,
            probe_rows=self.probe_rows,
        )
        rows, self.acceptance_, self.rounds_ = class_rows(
            key,
            self.model_,
            n,
            labels,
            per,
            max_rounds=self.max_rounds,
            what=f"the {self.name} model",
            shares=self.model_class_share_,
        )
        return rows[:, self._order]


class ScmOnly(CausalMix):
    """`scm_only`: the same model and rows as `causalmix` (module docstring); the
    fine-tuning loop uses synthetic rows only."""

    name = "scm_only"
