"""Where a fine-tuning run's synthetic rows come from: one small interface.

The loop (`finetune._finetune`) asks its `SyntheticSource` for step s's rows with
``draw(s, n, rng)``, `rng` being the step's NumPy generator
(``default_rng([seed, s, 1])``), and announces the next step with
``ahead(s + 1, rng)`` so that a source that computes asynchronously (the SCM stream)
works while torch trains. Rows come back encoded: (n, f) float32 features in the
encoder's codes and (n,) int64 class codes. Two sources:

* `ScmSource`: the SCM ensemble stream (`finetune._mixing.SyntheticRows`), fresh rows
  every step from one compiled call (mode "stream"). It is the code path of
  ``augment="causalmix"`` / ``"scm_only"``, with the same calls in the same order as
  before this interface existed, so its rows are bit for bit those of earlier runs.
* `GeneratorSource`: any other generator of `finetune.augmenters`, fitted on the
  training rows with the estimator's schema (`fit_generator`). Its mode follows the
  generator's `streaming` attribute:

  - "stream" (`streaming` True: mixup, gaussian_copula, table_augment): every step
    calls ``sample(n, seed=...)`` with a seed drawn from the step's generator, so
    each step sees new rows;
  - "pool" (`streaming` False: smote, mixed_model, ctgan, tabddpm, ...): one
    ``sample(pool_rows, seed=...)`` when the source is made, and step s takes n
    distinct rows of it, chosen by the step's generator. `pool_rows` defaults to
    `pool_size`: the rows the run can use at most (the largest step's rows times
    the steps), at least one step's rows and capped at `POOL_CAP`.

Both are pure functions of (seed, step), so a run resumed from a checkpoint draws
the rows it would have drawn without stopping (a pool generator is refitted with
the same seed and draws the same pool).

A class request (`FinetuneConfig.synthetic_classes`: "balanced" or {label: share})
fixes every step's class mix. A stream generator gets it as ``sample(n, seed=...,
y=request)``; a pool generator draws its pool with it, and each step takes its
class counts (`bridge._classes.class_codes`: largest remainder) as distinct rows of
each class of the pool, shuffled. The SCM stream's counterpart is
`finetune._class_rows.ClassRows`. A generator whose `conditional` is "refuse"
cannot take a request; `GeneratorSource` refuses it when it is made.
"""

from __future__ import annotations

import abc
import json
from typing import Any

import numpy as np

POOL_CAP = 10_000  # the most rows a pool generator draws for one run


def pool_size(max_rows: int, max_steps: int) -> int:
    """The default pool: `max_rows` per step over `max_steps`, capped at `POOL_CAP`.

    Examples:
      >>> pool_size(96, 100), pool_size(96, 1000), pool_size(20_000, 5)
      (9600, 10000, 20000)
    """
    return int(max(max_rows, min(max_rows * max(max_steps, 1), POOL_CAP)))


class SyntheticSource(abc.ABC):
    """The synthetic rows of a fine-tuning run, step by step (module docstring).

    Attributes:
      mode: "stream" (fresh rows every step) or "pool" (rows of one pool).
    """

    mode: str = "stream"

    @abc.abstractmethod
    def draw(
        self, step: int, n: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Step `step`'s rows: (X (m, f) float32, y (m,) int64), m <= n.

        Args:
          step: the (0-based) step.
          n: the rows the step asks for (0 gives none).
          rng: the step's NumPy generator.
        """

    def ahead(self, step: int, rng: np.random.Generator) -> None:  # noqa: B027
        """Announces that `step` (with its generator `rng`) is asked for next.

        Sources that compute ahead (the SCM stream) start here; others ignore it.
        """

    def describe(self) -> dict[str, Any]:
        """What the run's records keep of this source (JSON-serialisable)."""
        return {"mode": self.mode}


class ScmSource(SyntheticSource):
    """The SCM ensemble stream of `finetune._mixing.SyntheticRows` as a source.

    `ahead` dispatches the next step's sampling, so JAX samples while torch trains;
    `draw` collects what was dispatched (or dispatches first, on the first step of
    a call).

    Args:
      rows: the `SyntheticRows` stream (its `start` the run's first step).
    """

    mode = "stream"

    def __init__(self, rows: Any) -> None:
        self.rows = rows

    def draw(
        self, step: int, n: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Step `step`'s rows (`SyntheticSource.draw`)."""
        if not self.rows.pending:  # the first step of this call
            self.rows.dispatch(rng)
        return self.rows.collect(n)

    def ahead(self, step: int, rng: np.random.Generator) -> None:
        """Dispatches step `step`'s sampling (JAX runs it asynchronously)."""
        self.rows.dispatch(rng)

    def describe(self) -> dict[str, Any]:
        """Mode, members and rows per member of the stream."""
        return {
            "mode": self.mode,
            "members": self.rows.members,
            "batch_size": int(self.rows.batch_size),
        }


class GeneratorSource(SyntheticSource):
    """A fitted `finetune.augmenters` generator as a source (module docstring).

    Args:
      generator: the fitted generator (`fit_generator`), whose schema is the
        encoder's.
      encoder: the estimator's `TableEncoder` (turns the generator's frames into
        codes).
      max_rows: the most rows any step asks for.
      max_steps: the run's steps (sizes the pool).
      seed: the run's seed (the pool's draw derives from it).
      pool_rows: rows of the pool (None: `pool_size(max_rows, max_steps)`); only
        for a generator that is not `streaming`.
      options: the generator's options, for the records (`describe`) only.
      classes: the class request of every step (module docstring; None: the
        generator's own classes). Its labels must be the encoder's.

    Attributes:
      mode: "stream" or "pool" (the generator's `streaming` attribute).
      pool_rows: rows of the pool (None in stream mode).
      draws: calls of the generator's `sample` so far.

    Raises:
      ValueError: `max_rows` < 1, `pool_rows` below `max_rows` (a step could not
        take distinct rows), or a class request for a generator that refuses them
        (naming the generators that take one).
    """

    def __init__(
        self,
        generator: Any,
        encoder: Any,
        *,
        max_rows: int,
        max_steps: int,
        seed: int,
        pool_rows: int | None = None,
        options: dict[str, Any] | None = None,
        classes: Any = None,
    ) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {max_rows}")
        if classes is not None and generator.conditional == "refuse":
            raise ValueError(
                f"the {generator.name} generator cannot draw rows of given classes "
                f"(its conditional is 'refuse'), so synthetic_classes={classes!r} "
                "cannot rebalance its rows; drop synthetic_classes or use a generator "
                f"that takes class requests: {', '.join(class_takers())}"
            )
        self.generator, self.encoder, self.classes = generator, encoder, classes
        self.options = json_safe(options)
        self.mode = "stream" if generator.streaming else "pool"
        self.draws = 0
        self.pool_rows: int | None = None
        self._pool: tuple[np.ndarray, np.ndarray] | None = None
        if self.mode == "pool":
            rows = pool_size(max_rows, max_steps) if pool_rows is None else pool_rows
            if rows < max_rows:
                raise ValueError(
                    f"pool_rows={rows} is below the {max_rows} rows of a step; give "
                    "at least that many"
                )
            self.pool_rows = int(rows)
            seed_pool = int(np.random.SeedSequence([seed, 4]).generate_state(1)[0])
            self._pool = self._sample(self.pool_rows, seed_pool & 0x7FFFFFFF)

    def _sample(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """n rows of the generator (of the class request), encoded."""
        X, y = self.generator.sample(n, seed=seed, y=self.classes)
        self.draws += 1
        enc = self.encoder
        return enc.transform(X), enc.encode_labels(y)

    def draw(
        self, step: int, n: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Step `step`'s rows: new ones (stream) or n distinct pool rows (pool)."""
        if n <= 0:
            return (
                np.zeros((0, len(self.encoder.features)), np.float32),
                np.zeros(0, np.int64),
            )
        if self._pool is None:
            return self._sample(n, int(rng.integers(1 << 31)))
        X, y = self._pool
        if self.classes is None:
            pick = rng.choice(len(y), size=min(n, len(y)), replace=False)
        else:
            pick = self._pick_classes(y, n, rng)
        return X[pick], y[pick]

    def _pick_classes(self, y: np.ndarray, n: int, rng: np.random.Generator) -> Any:
        """Pool rows with the request's class counts for n rows, shuffled.

        A class the pool holds fewer rows of than asked gives all it has (the pool
        is drawn with the request and `pool_rows` >= n, so only a class's rounding
        can fall short: one row at most).
        """
        from bridge._classes import class_codes

        classes = self.encoder.target.categories
        want = np.bincount(
            class_codes(self.classes, n, classes, 0), minlength=len(classes)
        )
        picks = []
        for c, m in enumerate(want):
            rows = np.flatnonzero(y == c)
            picks.append(rng.choice(rows, size=min(int(m), len(rows)), replace=False))
        return rng.permutation(np.concatenate(picks))

    def describe(self) -> dict[str, Any]:
        """The generator's name and options, the mode and the pool's rows."""
        out = {
            "generator": self.generator.name,
            "mode": self.mode,
            "pool_rows": self.pool_rows,
            "options": self.options,
        }
        if self.classes is not None:  # absent otherwise: fingerprints as before
            out["synthetic_classes"] = self.classes
        return out


def class_takers() -> tuple[str, ...]:
    """The generators of `finetune.augmenters.names()` that take class requests.

    Imports every generator's module (a few seconds at most; only the refusal's
    error message calls it).

    Examples:
      >>> {"smote", "causalmix"} <= set(class_takers())
      True
    """
    import importlib

    from finetune.augmenters import _REGISTRY

    out = []
    for name, (module, cls) in sorted(_REGISTRY.items()):
        if getattr(importlib.import_module(module), cls).conditional != "refuse":
            out.append(name)
    return tuple(out)


def json_safe(options: dict[str, Any] | None) -> dict[str, Any]:
    """Generator options as the records keep them (JSON): objects such as option
    dataclasses by their repr.

    Examples:
      >>> json_safe({"k": 3, "f": {1, 2}})
      {'k': 3, 'f': '{1, 2}'}
    """
    return json.loads(json.dumps(dict(options or {}), default=repr))


def fit_generator(
    name: str,
    options: dict[str, Any] | None,
    X: np.ndarray,
    y: np.ndarray,
    encoder: Any,
    *,
    seed: int,
) -> Any:
    """A `finetune.augmenters` generator fitted on encoded rows, in their schema.

    The rows are decoded into a frame of the encoder's columns (`bridge.to_frame`)
    and the generator is fitted with ``columns=encoder.columns``, so its categories
    and classes are the encoder's and its samples encode back exactly.

    Args:
      name: a name of `finetune.augmenters.names()`.
      options: the generator's options (None: its defaults).
      X: (n, f) float64 encoded training features (NaN where missing).
      y: (n,) int64 class codes.
      encoder: the estimator's `TableEncoder`.
      seed: the fit's seed.

    Returns:
      The fitted generator.

    Raises:
      ValueError: an unknown name (listing the names), bad options (naming the
        generator), or a table the generator refuses (its message).
    """
    import bridge
    from finetune.augmenters import make

    try:
        gen = make(name, **dict(options or {}))
    except TypeError as err:
        raise ValueError(
            f"bad augment_options for the {name} generator ({err}); see its class "
            "in finetune.augmenters for its options"
        ) from err
    codes = np.column_stack([X, y.astype(np.float64)])
    frame = bridge.to_frame(codes, encoder.columns)
    target = encoder.target.name
    try:
        gen.fit(
            frame.drop(columns=[target]),
            frame[target],
            columns=encoder.columns,
            seed=seed,
        )
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"fitting the {name} generator to the training table failed "
            f"({type(err).__name__}: {err}); fix the table as the message says, or "
            "use another augment= (command line: --augment)"
        ) from err
    return gen
