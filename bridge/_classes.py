"""Rows of asked classes from a model with a categorical target, by compiled rejection.

A class request (`class_codes`) becomes n class codes; `class_rows` draws a pool of
the ensemble's rows and keeps, for request i of class c, the r-th row of class c in
the pool (r: the rank of i among the requests of class c) - all inside ONE compiled
function (`draw_classes`): the pool is sorted by target code (stably, so each class
keeps its pool order) and the ranks are a cumsum over the request mask; no Python
loop over rows or classes.

The pool holds `per` rows per member, all members' rows shuffled together
(`draw_pool`), so the rows are the ensemble's mixture over graphs, drawn from the
model's conditional P(x | y = c) (exactly, up to taking rows without replacement from
a finite pool with equal rows per member). `pool_size` sizes it from the model's class
shares p_c: for a_c rows of class c, ``(a_c * safety + 3 sqrt(a_c) + 4) / p_c`` rows
(the largest over the asked classes; the sqrt term is three binomial standard
deviations), rounded up to a bucket of per-member sizes (`bucket`) so that nearby
requests share a compile. Only when a class comes up short does Python loop: the
pool grows fourfold with the key ``fold_in(key, round)``, for at most `max_rounds`
rounds, then a `ValueError` names the class.

Used by the `causalmix` / `scm_only` generators (`finetune.augmenters`) and by
`write_samples` / `write_dataset` with ``classes=`` (``causalmixft sample --classes``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bridge._stream import first_bad_column
from jaxscm import sample
from jaxscm._sample import sampler_input
from jaxscm._schema import label

MAX_ROWS = 1 << 21  # the most pooled rows one compiled call draws


def class_codes(y: Any, n: int, classes: Sequence[str], seed: int) -> np.ndarray | None:
    """Resolves a class request into (n,) class codes (None: no request).

    A request is None, a label (every row of that class), a sequence of n labels, a
    mapping label -> share (normalised; absent classes get none) or "balanced"
    (equal shares). Shares become counts by largest remainder, and the rows are
    shuffled with `seed`, so a request gives the same classes for the same seed.

    Raises:
      ValueError: an unknown class, a negative or non-finite share, shares summing
        to 0, or a list of the wrong length.

    Examples:
      >>> sorted(class_codes("balanced", 4, ("a", "b"), 0).tolist())
      [0, 0, 1, 1]
      >>> class_codes({"b": 1.0}, 2, ("a", "b"), 0).tolist()
      [1, 1]
      >>> class_codes("a", 2, ("a", "b"), 0).tolist()
      [0, 0]
    """
    if y is None:
        return None
    index = {c: i for i, c in enumerate(classes)}

    def code(v: Any) -> int:
        key = label(v)
        if key not in index:
            raise ValueError(
                f"class {v!r} is not a training class; classes are {list(classes)}"
            )
        return index[key]

    if isinstance(y, str) and y == "balanced":
        shares = np.full(len(classes), 1.0 / len(classes))
    elif isinstance(y, Mapping):
        shares = np.zeros(len(classes))
        for k, v in y.items():
            v = float(v)
            if not np.isfinite(v) or v < 0:
                raise ValueError(f"class share of {k!r} must be >= 0, got {v!r}")
            shares[code(k)] += v
        if shares.sum() <= 0:
            raise ValueError("the class shares sum to 0; give some class a share")
        shares = shares / shares.sum()
    elif isinstance(y, (str, int, np.integer, float, bool)):
        return np.full(n, code(y), np.int64)
    else:
        values = list(y)
        if len(values) != n:
            raise ValueError(f"y lists {len(values)} labels for n={n} rows")
        return np.array([code(v) for v in values], np.int64)
    exact = n * shares
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    codes = np.repeat(np.arange(len(classes)), counts)
    return np.random.default_rng(seed).permutation(codes)


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


def _pool(key: Any, model: Any, per_member: int) -> Any:
    x = sample(jax.random.fold_in(key, 0), model, per_member)
    rows = x.reshape(-1, x.shape[-1])
    return rows[jax.random.permutation(jax.random.fold_in(key, 1), rows.shape[0])]


def _valid_class(rows: Any, target: int, n_classes: int) -> Any:
    """Each pooled row's class code, `n_classes` where the target is not a class."""
    code = rows[:, target]
    ok = (
        jnp.isfinite(code)
        & (code >= 0)
        & (code < n_classes)
        & (code == jnp.round(code))
    )
    return jnp.where(ok, code, n_classes).astype(jnp.int32)


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5))
def _draw_any(key: Any, model: Any, per_member: int, n: int, target: int, k: int):  # noqa: ANN202
    rows = _pool(key, model, per_member)
    cls = _valid_class(rows, target, k)
    order = jnp.argsort(cls == k, stable=True)  # valid rows first, pool order kept
    return rows[order[:n]], (cls < k).sum()


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _draw_classes(
    key: Any, model: Any, per_member: int, target: int, k: int, want: Any
):  # noqa: ANN202
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
    model = sampler_input(model)  # an ensemble's plan, stacked once on the host
    return _draw_any(key, model, int(per_member), int(n), int(target), int(n_classes))


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
    want = jnp.asarray(want, jnp.int32)
    model = sampler_input(model)
    return _draw_classes(key, model, int(per_member), int(target), int(n_classes), want)


def n_members(model: Any) -> int:
    """Members of an ensemble; 1 for a single SCM."""
    return int(getattr(model, "n_members", 0)) or 1


def target_of(model: Any) -> tuple[int, int]:
    """(column of the categorical target in the model's rows, number of classes).

    Raises:
      ValueError: the model flags no categorical target, or more than one.
    """
    cols = list(model.columns)
    targets = [i for i, c in enumerate(cols) if c.is_target]
    if len(targets) != 1 or cols[targets[0]].kind != "categorical":
        raise ValueError(
            "class-conditional rows need a model with exactly one categorical target "
            f"column (is_target=True), got {[cols[i].name for i in targets]}"
        )
    return targets[0], len(cols[targets[0]].categories)


def model_shares(key: Any, model: Any, rows: int = 4096) -> np.ndarray:
    """The model's class shares on a pooled draw of about `rows` rows (key `key`).

    Rows whose target is no class count in the denominator, so the shares can sum
    to less than 1.
    """
    target, n_classes = target_of(model)
    k = n_members(model)
    per = -(-rows // k)
    drawn, _ = draw_pool(key, model, per, per * k, target, n_classes)
    code = np.asarray(drawn[:, target])
    valid = code[np.isin(code, np.arange(n_classes))].astype(np.int64)
    return np.bincount(valid, minlength=n_classes) / len(code)


def pool_size(
    asked: np.ndarray | None,
    n: int,
    shares: np.ndarray,
    k: int,
    *,
    safety: float,
    probe_rows: int,
) -> int:
    """Rows per member of the first pool (module docstring).

    Args:
      asked: (n_classes,) rows asked of each class, or None (any class).
      n: rows wanted.
      shares: the model's class shares (`model_shares`).
      k: members.
      safety: oversampling factor (>= 1).
      probe_rows: rows the shares were measured on (a class never seen counts as
        half a row of them).
    """
    if asked is None:
        need = (n + 3 * math.sqrt(n) + 4) / max(float(shares.sum()), 1e-3)
    else:
        share = np.maximum(shares, 0.5 / probe_rows)
        need = max(
            (a * safety + 3 * math.sqrt(a) + 4) / share[c]
            for c, a in enumerate(asked)
            if a > 0
        )
    return bucket(min(math.ceil(need / k), MAX_ROWS // k))


def class_rows(
    key: Any,
    model: Any,
    n: int,
    labels: np.ndarray | None,
    per: int,
    *,
    max_rounds: int,
    what: str = "the model",
    shares: np.ndarray | None = None,
) -> tuple[np.ndarray, float, int]:
    """`n` rows (model column order) whose target is a class, of classes `labels`.

    Args:
      key: the draw's key; round r draws with ``fold_in(key, r)``.
      model: an `Ensemble` or `SCM` with one categorical target.
      n: rows.
      labels: (n,) class codes (row i of class labels[i]), or None (any class).
      per: rows per member of the first pool (`pool_size`); each further round
        draws four times as many.
      max_rounds: rounds before a short class fails (>= 1).
      what: names the model in errors.
      shares: the model's class shares, quoted in errors.

    Returns:
      (rows (n, d) float64, acceptance = n / rows drawn in the final round,
      rounds used).

    Raises:
      ValueError: a class (or, with no labels, any class) still short after
        `max_rounds` rounds, naming it and what to change.
    """
    target, n_classes = target_of(model)
    k = n_members(model)
    columns = list(model.columns)
    asked = None if labels is None else np.bincount(labels, minlength=n_classes)
    drawn = 0
    for r in range(max_rounds):
        k_r = jax.random.fold_in(key, r)
        drawn = per * k
        # rows come out in a bucketed count (fewer compiles), cut here
        m = min(bucket(n), per * k)
        if asked is None:
            rows, valid = draw_pool(k_r, model, per, m, target, n_classes)
            short = int(valid) < n
        else:
            want = np.full(bucket(n), -1, np.int32)  # -1: padding, no class
            want[:n] = labels
            rows, avail, _ = draw_classes(k_r, model, per, target, n_classes, want)
            avail = np.asarray(avail)
            short = bool((asked > avail).any())
        if not short:
            return np.asarray(rows, np.float64)[:n], n / drawn, r + 1
        per = bucket(min(4 * per, MAX_ROWS // k))
    name = columns[target].name
    if asked is None:
        raise ValueError(
            f"{what} drew fewer than {n} rows with a valid class in {max_rounds} "
            f"rounds (up to {drawn} rows); the target {name!r} is broken - refit the "
            "model"
        )
    c = int(np.argmax(asked - avail))
    label_c = columns[target].categories[c]
    share = "" if shares is None else f" (its share of that class is {shares[c]:.4f})"
    raise ValueError(
        f"{what} drew only {int(avail[c])} of the {int(asked[c])} rows of class "
        f"{label_c!r} asked, in {max_rounds} rounds of up to {drawn} rows{share}; "
        f"ask for fewer rows of {label_c!r}, allow more rounds, or refit with the "
        "class share calibrated (LabelOptions(class_share=True))"
    )


# The probe that sizes a writer's pools draws with this key folded into block 0's.
_PROBE = 0xC1A55

CLASSES_RULE = (
    "block b asks class_codes(request, block_rows, classes, seed=b) (shares as counts "
    "by largest remainder, shuffled by a NumPy generator seeded b) and draws them by "
    "rejection from a pool of per_member rows per member under fold_in(fold_in(key, "
    "b), r), r = 0, 1, ... (the pool four times larger each round a class is short); "
    "the block's first rows are kept"
)


@dataclasses.dataclass(frozen=True)
class ClassPlan:
    """How a writer draws the rows of a class request, block by block.

    Every block asks the same class counts (`class_codes` of `request` for
    `block_rows` rows), shuffled by the block's index, and draws them with
    `class_rows` from the block's key. So a row depends only on (model, key, block
    size, request, its global index), as the unconditional rows do.

    Attributes:
      request: "balanced" or {label: share} (labels as `label` gives them, shares
        normalised).
      classes: the target's labels.
      block_rows: rows per block.
      per_member: rows per member of a block's first pool (`pool_size`, from the
        model's class shares on a probe draw).
      max_rounds: rounds before a short class fails.
    """

    request: Any
    classes: tuple[str, ...]
    block_rows: int
    per_member: int
    max_rounds: int

    def rows(self, key: Any, model: Any, block: int) -> tuple[np.ndarray, Any]:
        """Block `block`'s rows (block_rows, d) and the index of a non-finite
        column (-1: none), from the block's key ``fold_in(key, block)``."""
        labels = class_codes(self.request, self.block_rows, self.classes, block)
        rows, _, _ = class_rows(
            jax.random.fold_in(key, block),
            model,
            self.block_rows,
            labels,
            self.per_member,
            max_rounds=self.max_rounds,
        )
        return rows, first_bad_column(rows)

    @classmethod
    def from_record(
        cls, record: Mapping[str, Any], classes: Sequence[str], block_rows: int
    ) -> ClassPlan:
        """The plan `record()` wrote, for a target with `classes`."""
        return cls(
            record["request"],
            tuple(classes),
            int(block_rows),
            int(record["per_member"]),
            int(record["max_rounds"]),
        )

    def record(self) -> dict[str, Any]:
        """The plan as JSON (for a dataset's identity)."""
        return {
            "request": self.request,
            "per_member": self.per_member,
            "max_rounds": self.max_rounds,
            "rule": CLASSES_RULE,
        }


def plan_classes(
    key: Any,
    model: Any,
    request: Any,
    block_rows: int,
    *,
    safety: float = 1.25,
    max_rounds: int = 3,
    probe_rows: int = 4096,
) -> ClassPlan:
    """The `ClassPlan` of a class request for blocks of `block_rows` rows.

    Args:
      key: the writer's key (the probe draws with ``fold_in(fold_in(key, 0),
        0xC1A55)``, a key no block uses).
      model: an `Ensemble` or `SCM` with one categorical target.
      request: "balanced" or a mapping label -> share (a single class: {label: 1}).
      block_rows: rows per block.
      safety, max_rounds, probe_rows: as in `pool_size` / `class_rows`.

    Raises:
      ValueError: the model has no categorical target, the request names an unknown
        class or bad shares, or it is not "balanced" or a mapping.
    """
    target, _ = target_of(model)
    classes = tuple(model.columns[target].categories)
    if not (request == "balanced" or isinstance(request, Mapping)):
        raise ValueError(
            f"classes must be 'balanced' or a mapping label -> share, got {request!r}"
        )
    # checks the labels and shares (unknown class, negative, summing to 0)
    asked = np.bincount(
        class_codes(request, block_rows, classes, 0), minlength=len(classes)
    )
    if isinstance(request, Mapping):  # as labels (1, 1.0, "1" are one class)
        total = sum(float(v) for v in request.values())
        shares: dict[str, float] = {}
        for k, v in request.items():
            shares[label(k)] = shares.get(label(k), 0.0) + float(v) / total
        request = shares
    probe = jax.random.fold_in(jax.random.fold_in(key, 0), _PROBE)
    shares = model_shares(probe, model, probe_rows)
    per = pool_size(
        asked,
        block_rows,
        shares,
        n_members(model),
        safety=safety,
        probe_rows=probe_rows,
    )
    return ClassPlan(request, classes, int(block_rows), per, int(max_rounds))
