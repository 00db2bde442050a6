"""`ctgan`: the `ctgan` package (sdv-dev/CTGAN 0.12) on CPU torch, small-data settings.

CTGAN's defaults (batch 500, pac 10, 300 epochs of max(n // batch, 1) steps) give a
128-row table 300 updates with one batch bigger than the table. Here the batch is
`batch_size` rows cut down to the table and to a multiple of 2 x `pac` (CTGAN needs
an even batch divisible by pac), so a 128-row table gets 2 steps an epoch; the
networks are CPU-sized. `time_budget` stops training at the first epoch boundary
past the budget (CTGAN's loop has no callback; we swap the progress-bar iterator of
its fit for one that stops - the only hook the package offers; epochs_ says how many
ran). The categorical columns and the target are CTGAN's `discrete_columns`.

Class requests are conditional: CTGAN's generator is conditioned on the target
value (`condition_value`), and the rows whose drawn target still differs are
rejected and redrawn, for at most `max_rounds` rounds (a `ValueError` names the
class otherwise). `sample(n)` draws CTGAN's own class mix. Determinism: CTGAN's own
`set_random_state` seeds NumPy and torch around `fit` and `sample` and restores the
global states afterwards. Sampling runs the generator network, so a pool is drawn
once (`streaming` False). CPU only: `enable_gpu=False` always.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import warnings
from collections.abc import Iterator

import numpy as np

from finetune.augmenters._base import Generator

_PATCH = threading.Lock()


class _Budget:
    """An iterator over epochs that stops once `seconds` have passed (tqdm's place)."""

    def __init__(self, epochs: range, seconds: float | None) -> None:
        self.epochs, self.seconds, self.done = epochs, seconds, 0

    def __call__(self, iterable: range, disable: bool = True) -> _Budget:
        self.epochs = iterable
        return self

    def __iter__(self) -> Iterator[int]:
        start = time.perf_counter()
        for i in self.epochs:
            if self.seconds is not None and time.perf_counter() - start > self.seconds:
                return
            yield i
            self.done += 1

    def set_description(self, *_: object) -> None:
        """tqdm's method, which CTGAN calls when verbose."""


@contextlib.contextmanager
def _budgeted(budget: _Budget) -> Iterator[None]:
    import ctgan.synthesizers.ctgan as module

    with _PATCH:
        saved = module.tqdm
        module.tqdm = budget
        try:
            yield
        finally:
            module.tqdm = saved


class CTGAN(Generator):
    """CTGAN behind the generator interface.

    Args:
      epochs: training epochs (at most; see `time_budget`).
      batch_size: rows per step, cut to the table and to a multiple of 2 * pac.
      pac: rows the discriminator sees as one pack.
      embedding_dim: noise dimension of the generator.
      hidden: width of the two hidden layers of generator and discriminator.
      time_budget: seconds of training (None: no limit).
      max_rounds: rounds of rejection for class requests.

    Examples:
      >>> import numpy as np, pandas as pd
      >>> X = pd.DataFrame({"a": np.arange(40.0), "c": ["u", "v"] * 20})
      >>> gen = CTGAN(epochs=2).fit(X, np.arange(40) % 2)
      >>> gen.sample(4, y="1")[1].tolist()
      ['1', '1', '1', '1']
    """

    name = "ctgan"
    conditional = "conditional"
    streaming = False

    def __init__(
        self,
        *,
        epochs: int = 300,
        batch_size: int = 64,
        pac: int = 4,
        embedding_dim: int = 64,
        hidden: int = 128,
        time_budget: float | None = 120.0,
        max_rounds: int = 20,
    ) -> None:
        for name, v in (
            ("epochs", epochs),
            ("batch_size", batch_size),
            ("pac", pac),
            ("embedding_dim", embedding_dim),
            ("hidden", hidden),
            ("max_rounds", max_rounds),
        ):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if time_budget is not None and not (
            isinstance(time_budget, (int, float)) and time_budget > 0
        ):
            raise ValueError(
                f"time_budget must be seconds > 0 or None, got {time_budget!r}"
            )
        self.epochs, self.batch_size, self.pac = epochs, batch_size, pac
        self.embedding_dim, self.hidden = embedding_dim, hidden
        self.time_budget, self.max_rounds = time_budget, max_rounds

    def _frame(self, codes: np.ndarray):  # noqa: ANN202
        import pandas as pd

        data = {}
        for j, col in enumerate(self.columns_):
            v = codes[:, j]
            data[f"c{j}"] = v.astype(np.int64) if col.kind == "categorical" else v
        return pd.DataFrame(data)

    def _fit(self, codes: np.ndarray, seed: int) -> None:
        with warnings.catch_warnings():
            # rdt 1.19 imports the stdlib's deprecated sre_parse; not ours to fix
            warnings.simplefilter("ignore", DeprecationWarning)
            from ctgan import CTGAN as Model

        step = 2 * self.pac // math.gcd(2, self.pac)
        batch = max(step, min(self.batch_size, len(codes)) // step * step)
        self.batch_size_ = batch
        self._model = Model(
            embedding_dim=self.embedding_dim,
            generator_dim=(self.hidden, self.hidden),
            discriminator_dim=(self.hidden, self.hidden),
            batch_size=batch,
            pac=self.pac,
            epochs=self.epochs,
            enable_gpu=False,
            verbose=False,
        )
        discrete = [
            f"c{j}" for j, c in enumerate(self.columns_) if c.kind == "categorical"
        ]
        self._lo, self._hi = codes.min(axis=0), codes.max(axis=0)
        budget = _Budget(range(self.epochs), self.time_budget)
        self._model.set_random_state(int(seed))
        start = time.perf_counter()
        with _budgeted(budget):
            self._model.fit(self._frame(codes), discrete_columns=discrete)
        self.fit_seconds_ = time.perf_counter() - start
        self.epochs_ = budget.done

    def _codes(self, frame) -> np.ndarray:  # noqa: ANN001
        out = np.empty((len(frame), len(self.columns_)))
        for j, col in enumerate(self.columns_):
            v = frame[f"c{j}"].to_numpy(np.float64)
            if col.kind != "numeric":
                v = np.round(v)
            out[:, j] = np.clip(v, self._lo[j], self._hi[j])
        return out

    def _draw(self, m: int, seed: int, code: int | None) -> np.ndarray:
        self._model.set_random_state(seed)
        if code is None:
            return self._codes(self._model.sample(m))
        target = f"c{len(self.columns_) - 1}"
        frame = self._model.sample(m, condition_column=target, condition_value=code)
        return self._codes(frame)

    def _sample(self, n: int, seed: int, labels: np.ndarray | None) -> np.ndarray:
        rng = self._rng(seed)
        if labels is None:
            return self._draw(n, int(rng.integers(2**31 - 1)), None)
        out = np.empty((n, len(self.columns_)))
        for c in np.unique(labels):
            where = np.flatnonzero(labels == c)
            got: list[np.ndarray] = []
            have = 0
            for _ in range(self.max_rounds):
                rows = self._draw(len(where), int(rng.integers(2**31 - 1)), int(c))
                rows = rows[rows[:, -1] == c]
                got.append(rows)
                have += len(rows)
                if have >= len(where):
                    break
            if have < len(where):
                raise ValueError(
                    f"the ctgan generator drew only {have} of {len(where)} rows of "
                    f"class {self.classes_[int(c)]!r} in {self.max_rounds} rounds; "
                    f"train longer (epochs, time_budget), raise max_rounds, or use "
                    f"smote / gaussian_copula for this class"
                )
            out[where] = np.concatenate(got)[: len(where)]
        return out
