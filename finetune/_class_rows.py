"""Class-targeted SCM rows for the fine-tuning loop (``synthetic_classes``).

`ClassRows` is the `finetune._mixing.SyntheticRows` stream with a class request: the
rows of step s are drawn by the compiled rejection of `bridge._classes` (the
machinery of ``causalmixft sample --classes`` and of the `causalmix` generator),
not by a code path of their own:

* the pool is sized once, when the stream is made, by `bridge._classes.plan_classes`
  (the model's class shares on a probe draw, for `max_rows` rows of the request);
* step s dispatches ONE compiled call, `draw_classes` with the key
  ``fold_in(fold_in(key, s), 0)``, ahead of time (``dispatch``), so JAX samples the
  next step while torch trains, as the unconditional stream does;
* ``collect`` checks the pool's class counts against the step's n rows; only when
  a class came up short does it draw again, on the spot (synchronously), with
  `class_rows` from ``fold_in(fold_in(key, s), 1)`` and a pool four times larger,
  growing fourfold per round, which fails naming the class after the plan's rounds
  (`redraws` counts these steps).

The request's `max_rows` class codes are laid out so that EVERY prefix has the
request's shares as closely as integer counts allow (each next row goes to the
class furthest below its share: balanced is round robin), so a step that asks
n < `max_rows` rows (a ratio schedule) keeps the first n and still has the asked
mix. The step's NumPy generator is not used: the rows are a function of (key, s)
alone, so a resumed run draws the same rows. Rows are pooled over the members
(``members="per_step"`` is refused with a request, by `FinetuneConfig`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from finetune._mixing import SyntheticRows


def prefix_codes(shares: np.ndarray, n: int) -> np.ndarray:
    """n class codes whose every prefix has `shares` as closely as counts allow.

    Row i goes to the class with the largest deficit ``(i + 1) * share - count``
    (ties: the lower code), which keeps every class within one row of its share in
    every prefix.

    Examples:
      >>> prefix_codes(np.array([0.5, 0.5]), 5).tolist()
      [0, 1, 0, 1, 0]
      >>> prefix_codes(np.array([0.75, 0.25]), 4).tolist()
      [0, 0, 1, 0]
    """
    shares = np.asarray(shares, np.float64) / np.sum(shares)
    counts = np.zeros(len(shares))
    out = np.empty(n, np.int32)
    for i in range(n):
        c = int(np.argmax((i + 1) * shares - counts))
        out[i] = c
        counts[c] += 1
    return out


class ClassRows(SyntheticRows):
    """`SyntheticRows` whose every step has the class mix of a request.

    Args:
      key: the stream's JAX key.
      model: a `jaxscm.Ensemble` (or `SCM`) with one categorical target.
      selection: the encoder's columns in the model's rows (as `SyntheticRows`).
      max_rows: the most synthetic rows any step asks for.
      request: "balanced" or {label: share} (labels of the model's target).
      start: the first step (to resume).

    Attributes:
      plan: the `bridge._classes.ClassPlan` (pool rows per member, rounds).
      want: (max_rows,) int32 class codes of a step's rows (`prefix_codes`).
      batch_size: pool rows per member of the first draw.
      redraws: steps whose first pool came up short so far.

    Raises:
      ValueError: as `SyntheticRows`, and a request naming an unknown class or bad
        shares, or a model without one categorical target.
    """

    def __init__(
        self,
        key: Any,
        model: Any,
        selection: Any,
        max_rows: int,
        *,
        request: Any,
        start: int = 0,
    ):
        super().__init__(key, model, selection, max_rows, members="pooled", start=start)
        from bridge._classes import plan_classes

        self.plan = plan_classes(key, model, request, max_rows)
        classes = self.plan.classes
        if isinstance(self.plan.request, str):  # "balanced"
            shares = np.ones(len(classes))
        else:
            shares = np.array([self.plan.request.get(c, 0.0) for c in classes])
        self.want = prefix_codes(shares, max_rows)
        self.batch_size = self.plan.per_member
        self.redraws = 0
        names = [c.name for c in model.columns]
        self._names = tuple(
            names[j] if j >= 0 else "(filled in)" for j in selection.features
        )

    def dispatch(self, rng: np.random.Generator) -> None:
        """Starts the next step's compiled draw (JAX runs it asynchronously).

        Raises:
          RuntimeError: when the previous dispatch has not been collected.
        """
        if self._pending is not None:
            raise RuntimeError("collect the dispatched rows before dispatching again")
        import jax

        from bridge._classes import draw_classes

        sel, key = self.selection, jax.random.fold_in(self.key, self.step)
        self._pending = (
            key,
            *draw_classes(
                jax.random.fold_in(key, 0),
                self.model,
                self.plan.per_member,
                sel.target,
                sel.n_classes,
                self.want,
            ),
        )
        self.step += 1

    def collect(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The dispatched step's first `n` rows: (X float32, y int64).

        Raises:
          RuntimeError: when nothing was dispatched.
          ValueError: a class still short after the redraw's rounds (naming it).
          NonFiniteSampleError: a kept feature holds NaN or infinity.
        """
        if self._pending is None:
            raise RuntimeError("dispatch a step before collecting its rows")
        from bridge._classes import bucket, class_rows

        (key, rows, avail, _), self._pending = self._pending, None
        want = self.want[: max(n, 0)]
        if (np.bincount(want, minlength=len(avail)) > np.asarray(avail)).any():
            import jax

            self.redraws += 1
            rows, _, _ = class_rows(
                jax.random.fold_in(key, 1),
                self.model,
                len(want),
                want,
                bucket(4 * self.plan.per_member),
                max_rounds=self.plan.max_rounds,
                what="the SCM ensemble (synthetic_classes)",
            )
        return self._select(np.asarray(rows)[: len(want)])

    def _select(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The encoder's columns of (m, d) model rows and their class codes."""
        from bridge._stream import raise_if_not_finite

        sel = self.selection
        left_out = sel.features < 0
        X = rows[:, np.where(left_out, 0, sel.features)].astype(np.float32)
        X[:, left_out] = sel.fill[left_out]
        broken = (~np.isfinite(X) & ~left_out[None, :]).any(axis=0)
        raise_if_not_finite(
            int(np.argmax(broken)) if broken.any() else -1,
            self._names,
            "synthetic rows",
        )
        return X, rows[:, sel.target].astype(np.int64)
