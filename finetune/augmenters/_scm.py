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

Rows are drawn from the pooled members: `m` rows per member, all members' rows
shuffled together (`draw_pool`), so a draw is the ensemble's mixture over graphs.

Class-conditional rows (`conditional = "rejection"`) are vectorised rejection inside
ONE compiled function (`draw_classes`): the pool is sorted by target code (stably,
so each class keeps its pool order) and request i of class c takes the r-th row of
class c in the pool, r being the rank of i among the requests of class c (a cumsum
over the request mask) - jnp only, no Python loop over rows or classes. The pool size
comes from the model's class shares p_c, measured once at fit on `probe_rows` rows:
for a_c rows asked of class c, ``(a_c * safety + 3 sqrt(a_c) + 4) / p_c`` rows
(the largest over the asked classes; the sqrt term is three binomial standard
deviations), rounded up to a bucket of per-member sizes so that nearby requests
share a compile. A balanced stream for a 2 % minority class is therefore one
compiled call in the common case. Only when a class comes up short does Python
loop: the pool grows fourfold with a fresh key, for at most `max_rounds` rounds,
then a `ValueError` names the class. `acceptance_` is the share of drawn rows the
last `sample` kept (rows returned / rows drawn in its final round).

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

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from finetune.augmenters._base import Generator

_MAX_ROWS = 1 << 21  # the most pooled rows one compiled call draws


def _pool(key: Any, model: Any, per_member: int) -> Any:
    import jax

    from jaxscm import sample

    x = sample(jax.random.fold_in(key, 0), model, per_member)
    rows = x.reshape(-1, x.shape[-1])
    return rows[jax.random.permutation(jax.random.fold_in(key, 1), rows.shape[0])]


def _valid_class(rows: Any, target: int, n_classes: int) -> Any:
    """Each pooled row's class code, `n_classes` where the target is not a class."""
    import jax.numpy as jnp

    code = rows[:, target]
    ok = (
        jnp.isfinite(code)
        & (code >= 0)
        & (code < n_classes)
        & (code == jnp.round(code))
    )
    return jnp.where(ok, code, n_classes).astype(jnp.int32)


def _draw_any(key: Any, model: Any, per_member: int, n: int, target: int, k: int):  # noqa: ANN202
    import jax.numpy as jnp

    rows = _pool(key, model, per_member)
    cls = _valid_class(rows, target, k)
    order = jnp.argsort(cls == k, stable=True)  # valid rows first, pool order kept
    return rows[order[:n]], (cls < k).sum()


def _draw_classes(
    key: Any, model: Any, per_member: int, target: int, k: int, want: Any
):  # noqa: ANN202
    import jax.numpy as jnp

    rows = _pool(key, model, per_member)
    cls = _valid_class(rows, target, k)
    order = jnp.argsort(cls, stable=True)  # grouped by class, pool order within
    avail = jnp.bincount(cls, length=k + 1)[:k]
    start = jnp.cumsum(avail) - avail
    mask = want[:, None] == jnp.arange(k)[None, :]  # (n, k) request i is of class c
    c = jnp.maximum(want, 0)  # padding (-1) looks up class 0; its row is cut later
    rank = jnp.take_along_axis(jnp.cumsum(mask, axis=0) - 1, c[:, None], 1)[:, 0]
    pos = jnp.clip(start[c] + rank, 0, rows.shape[0] - 1)
    return rows[order[pos]], avail, mask.sum(axis=0)


_JIT: dict[str, Any] = {}


def _jitted(name: str) -> Any:
    import jax

    if not _JIT:
        _JIT["any"] = jax.jit(_draw_any, static_argnums=(2, 3, 4, 5))
        _JIT["classes"] = jax.jit(_draw_classes, static_argnums=(2, 3, 4))
    return _JIT[name]


def draw_pool(
    key: Any, model: Any, per_member: int, n: int, target: int, n_classes: int
):  # noqa: ANN201
    """The first `n` rows of a pooled draw whose target is a class (one compiled call).

    Args:
      key: JAX key of the draw.
      model: a `jaxscm.Ensemble` (or `SCM`).
      per_member: rows drawn per member (static: one compile per value).
      n: rows returned (static).
      target: the target's column in the model's rows.
      n_classes: codes 0..n_classes-1 are classes.

    Returns:
      (rows (n, d) in the model's column order, number of valid rows drawn); when
      fewer than n rows are valid the tail holds invalid rows (the caller checks).
    """
    return _jitted("any")(
        key, model, int(per_member), int(n), int(target), int(n_classes)
    )


def draw_classes(
    key: Any, model: Any, per_member: int, target: int, n_classes: int, want: Any
):  # noqa: ANN201
    """Rows of the requested classes by vectorised rejection, in one compiled call.

    Args:
      key, model, per_member, target, n_classes: as in `draw_pool`.
      want: (n,) int32 class codes; row i of the result is of class want[i]; -1
        pads (its row is any row, for the caller to cut).

    Returns:
      (rows (n, d), avail (n_classes,) rows of each class in the pool, asked
      (n_classes,) rows requested of each class). Where asked[c] > avail[c] the rows
      of class c past avail[c] are not of class c; the caller draws again.

    Examples:
      >>> import jax, jaxscm, numpy as np
      >>> scm = jaxscm.random_scm(jax.random.key(0), 3, n_classes=2, target=True)
      >>> want = np.array([1, 1, 0], np.int32)
      >>> rows, avail, asked = draw_classes(jax.random.key(1), scm, 64, 2, 2, want)
      >>> np.asarray(rows[:, 2]).astype(int).tolist(), np.asarray(asked).tolist()
      ([1, 1, 0], [1, 2])
    """
    import jax.numpy as jnp

    want = jnp.asarray(want, jnp.int32)
    return _jitted("classes")(
        key, model, int(per_member), int(target), int(n_classes), want
    )


def bucket(rows: int) -> int:
    """`rows` rounded up to 2^j times 1, 1.25, 1.5 or 1.75 (few distinct compiles).

    Examples:
      >>> [bucket(r) for r in (1, 5, 9, 100, 129)]
      [1, 5, 10, 112, 160]
    """
    if rows <= 4:
        return max(int(rows), 1)
    step = 1 << max(int(math.floor(math.log2(rows))) - 2, 0)
    return int(-(-rows // step) * step)


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
        cols = tuple(model.columns)
        targets = [c for c in cols if c.is_target]
        if len(targets) != 1 or targets[0].kind != "categorical":
            raise ValueError(
                "the model must flag exactly one categorical target column "
                f"(is_target=True), got {[c.name for c in targets]}"
            )
        gen = cls(**options)
        gen.columns_ = tuple(c for c in cols if not c.is_target) + tuple(targets)
        gen.classes_ = targets[0].categories
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
        self._target = names.index(self.columns_[-1].name)
        self._k = int(getattr(self.model_, "n_members", 0)) or 1
        self._key = jax.random.fold_in(jax.random.key(seed), 1)
        per = -(-self.probe_rows // self._k)
        key = jax.random.fold_in(jax.random.key(seed), 2)
        n_classes = len(self.classes_)
        rows, _ = draw_pool(
            key, self.model_, per, per * self._k, self._target, n_classes
        )
        code = np.asarray(rows[:, self._target])
        valid = code[np.isin(code, np.arange(n_classes))].astype(np.int64)
        self.model_class_share_ = np.bincount(valid, minlength=n_classes) / len(code)

    def _sample(self, n: int, seed: int, labels: np.ndarray | None) -> np.ndarray:
        import jax

        key = jax.random.fold_in(self._key, int(seed) % (1 << 32))
        n_classes = len(self.classes_)
        if labels is None:
            asked = None
            need = (n + 3 * math.sqrt(n) + 4) / max(self.model_class_share_.sum(), 1e-3)
        else:
            asked = np.bincount(labels, minlength=n_classes)
            share = np.maximum(self.model_class_share_, 0.5 / self.probe_rows)
            need = max(
                (a * self.safety + 3 * math.sqrt(a) + 4) / share[c]
                for c, a in enumerate(asked)
                if a > 0
            )
        per = bucket(min(math.ceil(need / self._k), _MAX_ROWS // self._k))
        drawn = 0
        for r in range(self.max_rounds):
            k_r = jax.random.fold_in(key, r)
            drawn = per * self._k
            # rows come out in a bucketed count (fewer compiles), cut here
            m = min(bucket(n), per * self._k)
            if asked is None:
                rows, valid = draw_pool(
                    k_r, self.model_, per, m, self._target, n_classes
                )
                short = int(valid) < n
            else:
                want = np.full(bucket(n), -1, np.int32)  # -1: padding, no class
                want[:n] = labels
                rows, avail, _ = draw_classes(
                    k_r, self.model_, per, self._target, n_classes, want
                )
                avail = np.asarray(avail)
                short = bool((asked > avail).any())
            if not short:
                self.acceptance_ = n / drawn
                self.rounds_ = r + 1
                return np.asarray(rows, np.float64)[:n, self._order]
            per = bucket(min(4 * per, _MAX_ROWS // self._k))
        if asked is None:
            raise ValueError(
                f"the {self.name} model drew fewer than {n} rows with a valid class in "
                f"{self.max_rounds} rounds (up to {drawn} rows); the target "
                f"{self.columns_[-1].name!r} is broken - refit the model"
            )
        c = int(np.argmax(asked - avail))
        raise ValueError(
            f"the {self.name} model drew only {int(avail[c])} of the {int(asked[c])} "
            f"rows of class {self.classes_[c]!r} asked, in {self.max_rounds} rounds of "
            f"up to {drawn} rows (its share of that class is "
            f"{self.model_class_share_[c]:.4f}); ask for fewer rows of "
            f"{self.classes_[c]!r}, raise max_rounds, or refit with the class share "
            "calibrated (LabelOptions(class_share=True))"
        )


class ScmOnly(CausalMix):
    """`scm_only`: the same model and rows as `causalmix` (module docstring); the
    fine-tuning loop uses synthetic rows only."""

    name = "scm_only"
