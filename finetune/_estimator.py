"""`CausalMixFTClassifier`: CausalMixFT as a scikit-learn classifier."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from finetune._augment import (
    SCM_AUGMENTS,
    augment_info,
    check_augment,
    check_classes,
    generator_source,
    scm_options,
)
from finetune._config import FinetuneConfig
from finetune._encode import TableEncoder
from finetune._mixing import stratified_split


class CausalMixFTClassifier(ClassifierMixin, BaseEstimator):
    """Fine-tunes a tabular foundation model on real rows plus causal synthetic rows.

    `fit` builds the table's one schema (`encoder_.columns`: non-numeric columns are
    categorical, numeric ones numeric, the target categorical), fits an ensemble of
    SCMs to the encoded training rows with that schema (`jaxscm.fit_scm(...,
    columns=...)`, so the SCM's codes are the encoder's codes), then
    fine-tunes the TFM (TabPFN; by default the project's offline checkpoint from
    `finetune.load_tfm`) on meta-batches that mix the real rows with fresh rows drawn
    from the ensemble every step, with early stopping on held-out rows. Prediction
    uses the fine-tuned network in context on the real training rows.

    ``augment="none"`` is plain fine-tuning (no SCM is fitted); ``"scm_only"``
    trains on synthetic rows alone; ``max_steps=0`` is the zero-shot TFM. Any other
    name of `finetune.augmenters.names()` (``"smote"``, ``"ctgan"``, ...) mixes the
    real rows with that generator's rows instead, the generator fitted on the
    training rows (not the validation rows) with the estimator's schema: a
    generator that is `streaming` draws fresh rows every step, any other draws one
    pool (`finetune._sources`: mode and pool size are in `augment_info_`). Such
    generators have no SCM, so `validation` and `inference_context` stay "real".

    The defaults of lr, max_steps, eval_every, ratio and validation are the ones the
    study's selection protocol chose on development splits (README, "The study";
    `benchmarks/results/study/select-ft/quick/select.md`, `select-mix/...`).

    Args:
      augment: "none", "causalmix", "scm_only" or another name of
        `finetune.augmenters.names()`.
      augment_options: the generator's options (`finetune.augmenters.make(augment,
        **augment_options)`); for "causalmix" / "scm_only" more keyword arguments
        of `jaxscm.fit_scm`, as `scm_options`.
      tfm: None (the default checkpoint), a checkpoint path or published name for
        `finetune.load_tfm`, or a `tabpfn.TabPFNClassifier` (its network is copied).
      max_steps: optimiser steps at most.
      time_limit: seconds of fine-tuning at most (None: no limit).
      random_state: int seed (None: a fresh seed, kept in `seed_`).
      ratio, ratio_end, ratio_schedule, placement, members, query_fraction,
        validation, n_synthetic_val, eval_metric, eval_every, patience, min_delta,
        lr, lr_schedule, warmup_fraction, weight_decay, grad_clip,
        n_estimators_train, n_estimators, fixed_preprocessing, inference_context,
        device, checkpoint_dir, checkpoint_every, synthetic_classes: as in
        `FinetuneConfig` (synthetic_classes, "balanced" or {label of y: share},
        is every step's synthetic class mix; refused for a "refuse" generator).
      validation_fraction: share of the training rows held out (stratified) for
        early stopping when no `X_val` is given.
      validation_in_context: add those held-out rows to the inference context after
        fine-tuning. None (default) adds them only when the pre-trained weights were
        kept (then the model is exactly the zero-shot TFM on all rows); otherwise it
        predicts with the context the kept step was validated with (on credit-g the
        extra rows lowered the test ROC-AUC of a model fine-tuned on the other rows).
      scm: a fitted `jaxscm.Ensemble` over the table's columns to use instead of
        fitting one; its categories and classes must be the encoder's (fit it with
        `columns=` the estimator's schema).
      n_dags: graphs in the fitted ensemble.
      scm_options: more keyword arguments for `jaxscm.fit_scm` (e.g.
        `discovery=jaxscm.DiscoveryOptions(...)`, `mechanisms=`).
      callback: called with every step's and evaluation's record (a dict).
      verbose: show progress bars.

    Attributes:
      classes_: the class labels.
      n_features_in_, feature_names_in_: the training columns.
      history_: per evaluation: step, train_loss, val_* (and test_*) metrics.
      steps_: per step: loss, lr, ratio, rows, synthetic share, seconds.
      best_step_: the step whose weights were kept (0: the pre-trained ones).
      stop_reason_: why fine-tuning stopped.
      scm_: the SCM ensemble used (None for plain fine-tuning or a generator).
      generator_: the fitted `finetune.augmenters` generator (None for "none" and
        the SCM path).
      augment_info_: what made the synthetic rows: generator (None for plain),
        mode ("stream", "pool" or None), pool_rows, options and fit_seconds.
      seed_: the seed used.
      fit_seconds_: seconds of fine-tuning (incl. evaluations).
      scm_seconds_: seconds spent fitting the SCM ensemble (0 when given or plain).
      config_: the `FinetuneConfig` of the run.

    Examples:
      The data comes from a vendored benchmark dataset: only this doctest imports
      `benchmarks`, the module itself does not (tests/test_boundaries.py checks it).

      >>> from benchmarks.datasets import make_split
      >>> s = make_split("credit-g", 128, seed=0)
      >>> clf = CausalMixFTClassifier(max_steps=50, random_state=0)
      >>> clf.fit(s.X_train, s.y_train).score(s.X_test, s.y_test)  # doctest: +SKIP
    """

    def __init__(
        self,
        augment: str = "causalmix",
        tfm: Any = None,
        *,
        augment_options: dict[str, Any] | None = None,
        max_steps: int = 100,
        time_limit: float | None = None,
        random_state: int | None = None,
        ratio: float = 1.0,
        ratio_end: float | None = None,
        ratio_schedule: str = "constant",
        placement: str = "both",
        members: str = "pooled",
        query_fraction: float = 0.3,
        validation: str = "real",
        validation_fraction: float = 0.25,
        validation_in_context: bool | None = None,
        n_synthetic_val: int = 1000,
        eval_metric: str = "roc_auc",
        eval_every: int = 10,
        patience: int | None = 5,
        min_delta: float = 0.0,
        lr: float = 3e-4,
        lr_schedule: str = "cosine",
        warmup_fraction: float = 0.1,
        weight_decay: float = 0.0,
        grad_clip: float | None = 1.0,
        n_estimators_train: int = 2,
        n_estimators: int = 4,
        fixed_preprocessing: bool = True,
        inference_context: str = "real",
        scm: Any = None,
        n_dags: int = 8,
        scm_options: dict[str, Any] | None = None,
        device: str = "cpu",
        checkpoint_dir: str | None = None,
        checkpoint_every: int = 25,
        synthetic_classes: Any = None,
        callback: Any = None,
        verbose: bool = False,
    ) -> None:
        self.augment = augment
        self.tfm = tfm
        self.augment_options = augment_options
        self.max_steps = max_steps
        self.time_limit = time_limit
        self.random_state = random_state
        self.ratio = ratio
        self.ratio_end = ratio_end
        self.ratio_schedule = ratio_schedule
        self.placement = placement
        self.members = members
        self.query_fraction = query_fraction
        self.validation = validation
        self.validation_fraction = validation_fraction
        self.validation_in_context = validation_in_context
        self.n_synthetic_val = n_synthetic_val
        self.eval_metric = eval_metric
        self.eval_every = eval_every
        self.patience = patience
        self.min_delta = min_delta
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.warmup_fraction = warmup_fraction
        self.weight_decay = weight_decay
        self.grad_clip = grad_clip
        self.n_estimators_train = n_estimators_train
        self.n_estimators = n_estimators
        self.fixed_preprocessing = fixed_preprocessing
        self.inference_context = inference_context
        self.scm = scm
        self.n_dags = n_dags
        self.scm_options = scm_options
        self.device = device
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.synthetic_classes = synthetic_classes
        self.callback = callback
        self.verbose = verbose

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.non_deterministic = False
        return tags

    def _config(self, seed: int) -> FinetuneConfig:
        check_augment(self)
        plain = self.augment == "none"
        return FinetuneConfig(
            ratio=0.0 if plain else self.ratio,
            ratio_end=None if plain else self.ratio_end,
            ratio_schedule=self.ratio_schedule,  # type: ignore[arg-type]
            placement=self.placement,  # type: ignore[arg-type]
            use_real=self.augment != "scm_only",
            members=self.members,  # type: ignore[arg-type]
            query_fraction=self.query_fraction,
            validation=self.validation,  # type: ignore[arg-type]
            n_synthetic_val=self.n_synthetic_val,
            eval_metric=self.eval_metric,  # type: ignore[arg-type]
            eval_every=self.eval_every,
            patience=self.patience,
            min_delta=self.min_delta,
            lr=self.lr,
            lr_schedule=self.lr_schedule,  # type: ignore[arg-type]
            warmup_fraction=self.warmup_fraction,
            weight_decay=self.weight_decay,
            grad_clip=self.grad_clip,
            max_steps=int(self.max_steps),
            time_limit=self.time_limit,
            n_estimators_train=self.n_estimators_train,
            n_estimators=self.n_estimators,
            fixed_preprocessing=self.fixed_preprocessing,
            inference_context=self.inference_context,  # type: ignore[arg-type]
            seed=seed,
            device=self.device,
            checkpoint_dir=self.checkpoint_dir,
            checkpoint_every=self.checkpoint_every,
            synthetic_classes=self.synthetic_classes,
        )

    def fit(
        self,
        X: Any,
        y: Any,
        X_val: Any = None,
        y_val: Any = None,
        *,
        X_test: Any = None,
        y_test: Any = None,
    ) -> CausalMixFTClassifier:
        """Fits the SCM ensemble or the generator (unless plain), then fine-tunes.

        Args:
          X: training features (DataFrame, possibly with string categorical columns,
            or a 2-D array).
          y: training labels (any hashable labels, e.g. strings).
          X_val, y_val: validation rows for early stopping (default: a stratified
            `validation_fraction` of the training rows).
          X_test, y_test: optional rows scored at every evaluation, only recorded in
            `history_` (never used for any decision).

        Returns:
          self.

        Raises:
          ValueError: bad options, a single-class training set, too few rows for the
            validation split, an SCM or generator that cannot model the table or
            its target.
        """
        from finetune._finetune import finetune
        from finetune._tabpfn import network_of

        __import__("jaxscm").enable_compilation_cache()  # CAUSALMIXFT_JAX_CACHE=0: off
        seed = _seed(self.random_state)
        config = self._config(seed)
        if config.checkpoint_dir:
            from finetune._checkpoint import verify

            # Before the SCM fit (seconds to minutes): a corrupted checkpoint fails now.
            verify(config.checkpoint_dir)
        X, y = _check_X(X), _check_y(y)
        enc = TableEncoder.fit(X, y)  # the table's one schema, also the SCM's
        check_classes(config.synthetic_classes, enc)
        # Encoded once, in float64 (what the SCM is fitted on); TabPFN takes float32.
        X64, ye = enc.transform(X, np.float64), enc.encode_labels(y)
        Xe = X64.astype(np.float32)
        n_classes = len(enc.classes)
        train = np.arange(len(ye))
        Xv = yv = None
        returned: np.ndarray = train[:0]
        if X_val is not None or y_val is not None:
            if X_val is None or y_val is None:
                raise ValueError("pass both X_val and y_val, or neither")
            Xv, yv = enc.transform(X_val), enc.encode_labels(y_val)
        elif config.max_steps > 0 and config.validation != "synthetic":
            train, returned = _validation_split(ye, self.validation_fraction, seed, enc)
            Xv, yv = Xe[returned], ye[returned]
        scm = selection = source = None
        t_scm = time.perf_counter()
        if self.augment not in SCM_AUGMENTS:
            if config.max_ratio > 0 and config.max_steps > 0:
                source = generator_source(self, X64[train], ye[train], enc, config)
        elif config.needs_scm and (
            config.max_steps > 0 or config.inference_context != "real"
        ):
            scm, selection = self._ensemble(X64, ye, train, enc, seed)
        scm_seconds = time.perf_counter() - t_scm
        X_t = y_t = None
        if X_test is not None and y_test is not None:
            X_t, y_t = enc.transform(X_test), enc.encode_labels(y_test)
        net = network_of(_resolve_tfm(self.tfm))
        result = finetune(
            net,
            Xe[train],
            ye[train],
            config=config,
            n_classes=n_classes,
            categorical=enc.categorical_indices,
            X_val=Xv,
            y_val=yv,
            scm=scm,
            selection=selection,
            X_test=X_t,
            y_test=y_t,
            callback=self._callback(config),
            source=source,
        )
        # The kept step was chosen with the training rows as context; by default the
        # model predicts with exactly that context (adding the held-out rows can hurt
        # a model fine-tuned on these very rows - measured on credit-g).
        ctx = train
        back = self.validation_in_context
        if back is None:  # auto: the pre-trained weights kept = the zero-shot model
            back = result.best_step == 0
        if back:
            ctx = np.concatenate([train, returned])
        Xc, yc = Xe[ctx], ye[ctx]
        if config.inference_context == "real+synthetic":
            import jax

            from finetune._mixing import SyntheticRows

            n_syn = max(int(round(config.max_ratio * len(ctx))), 1)
            src = SyntheticRows(
                jax.random.fold_in(jax.random.key(seed), 2),
                scm,
                selection,
                n_syn,
                members="pooled",
            )
            Xs, ys = src.draw(np.random.default_rng([seed, 2]), n_syn)
            Xc, yc = np.concatenate([Xc, Xs]), np.concatenate([yc, ys])
        self.encoder_ = enc
        self.classes_ = enc.classes
        self.n_features_in_ = len(enc.features)
        if enc.from_frame:
            self.feature_names_in_ = np.asarray(enc.features, dtype=object)
        self.network_ = result.network
        self.context_X_, self.context_y_ = Xc, yc
        self.history_ = [
            {k: v for k, v in h.items() if k != "kind"} for h in result.history
        ]
        self.steps_ = [
            {k: v for k, v in s.items() if k != "kind"} for s in result.steps
        ]
        self.best_step_ = result.best_step
        self.stop_reason_ = result.stop_reason
        self.fit_seconds_ = result.seconds
        self.scm_seconds_ = scm_seconds if scm is not None else 0.0
        self.scm_ = scm
        self.generator_ = None if source is None else source.generator
        self.augment_info_ = augment_info(
            self, source, scm, scm_seconds, config.synthetic_classes
        )
        self.seed_ = seed
        self.config_ = config
        self._predictor = self._build_predictor()
        return self

    def _callback(self, config: FinetuneConfig) -> Any:
        if not self.verbose:
            return self.callback
        from tqdm.auto import tqdm

        bar = tqdm(
            total=config.max_steps, desc="fine-tuning", unit="step", disable=None
        )
        user = self.callback

        def cb(rec: dict[str, Any]) -> None:
            if rec["kind"] == "step":
                bar.update(1)
                bar.set_postfix(loss=f"{rec['loss']:.3f}")
            elif "val_score" in rec:
                bar.set_postfix(val=f"{rec['val_score']:.3f}")
            if user is not None:
                user(rec)

        return cb

    def _ensemble(
        self,
        X: np.ndarray,
        y: np.ndarray,
        train: np.ndarray,
        enc: TableEncoder,
        seed: int,
    ) -> tuple[Any, Any]:
        """The SCM ensemble over the encoder's schema, and its `Selection`.

        `X`, `y` are the encoded training table (float64 codes, int64 labels); the
        SCM is fitted on these codes with the encoder's own `Column`s, so its
        samples are encoder codes.
        """
        scm = self.scm
        constants: dict[str, float] = {}
        if scm is None:
            import jaxscm

            Xtr = X[train]
            # Documented fallback: a feature constant in the training rows carries no
            # causal information and the SCM front end refuses it; it is left out of
            # the SCM and synthetic rows get its single (encoded) value.
            kept = []
            for j, col in enumerate(enc.feature_columns):
                vals = np.unique(Xtr[:, j][~np.isnan(Xtr[:, j])])
                if len(vals) <= 1:
                    constants[col.name] = float(vals[0]) if len(vals) else float("nan")
                else:
                    kept.append(j)
            columns = (*(enc.feature_columns[j] for j in kept), enc.target)
            codes = np.column_stack([Xtr[:, kept], y[train].astype(np.float64)])
            opts = scm_options(self)
            opts.setdefault("progress", bool(self.verbose))
            try:
                scm = jaxscm.fit_scm(
                    codes, columns=columns, n_dags=self.n_dags, seed=seed, **opts
                )
            except Exception as err:
                raise ValueError(
                    f"fitting the SCM ensemble to the training table failed "
                    f"({type(err).__name__}: {err}); fix the table as the message "
                    "says, pass a fitted ensemble as scm=..., or use augment='none' "
                    "(command line: --augment none) for plain fine-tuning"
                ) from err
        try:
            selection = enc.synthetic_selection(scm.columns, constants)
        except ValueError as err:
            raise ValueError(
                f"the SCM ensemble cannot generate this table: {err}; use "
                "augment='none' (command line: --augment none) for plain fine-tuning"
            ) from err
        return scm, selection

    def _build_predictor(self) -> Any:
        """TabPFN fitted on the inference context, built once (predict is read-only)."""
        from finetune._tabpfn import make_classifier

        clf = make_classifier(
            self.network_,
            n_estimators=self.config_.n_estimators,
            categorical=self.encoder_.categorical_indices,
            device=self.config_.device,
            seed=self.seed_,
            batched=False,
        )
        self.network_.module.eval()
        return clf.fit(self.context_X_, self.context_y_)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, (n, n_classes) in `classes_` order."""
        check_is_fitted(self, "network_")
        X = _check_X(X)
        by_name = self.encoder_.from_frame and hasattr(X, "columns")
        if not by_name and X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input"
            )
        Xe = self.encoder_.transform(X)
        clf = self._predictor
        p = np.asarray(clf.predict_proba(Xe), np.float64)
        out = np.zeros((len(Xe), len(self.classes_)))
        out[:, np.asarray(clf.classes_, np.int64)] = p
        return out

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class labels."""
        p = self.predict_proba(X)
        return self.classes_[p.argmax(axis=1)]

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Writes the fitted model to a new directory (no pickle).

        The directory holds ``model.safetensors`` (the fine-tuned network, also a
        TabPFN checkpoint that `finetune.load_tfm` and `TabPFNClassifier` read),
        ``context.safetensors`` (the encoded inference context), ``estimator.json``
        (options, encoding, classes, history, and the sha256 of itself and of
        every other file) and, when an SCM was used, ``scm.npz`` (`jaxscm.save`).
        It is written next to `path` and renamed into
        place, so an interrupted save leaves nothing under `path`.

        Raises:
          FileExistsError: `path` exists and is not empty.
        """
        from finetune._persist import save

        return save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CausalMixFTClassifier:
        """Reads a model written by `save`, after verifying every file's checksum.

        Raises:
          FileNotFoundError: no such directory or a file is missing.
          jaxscm.FormatError: (a ValueError) not a saved CausalMixFTClassifier of
            this version, a corrupted or edited file, or invalid metadata.
        """
        from finetune._persist import load

        return load(cls, path)


def _seed(random_state: Any) -> int:
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0] & 0x7FFFFFFF)
    if isinstance(random_state, (int, np.integer)) and not isinstance(
        random_state, bool
    ):
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0, got {random_state}")
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    raise ValueError(f"random_state must be an int or None, got {random_state!r}")


def _resolve_tfm(tfm: Any) -> Any:
    if tfm is None or isinstance(tfm, (str, os.PathLike)):
        from finetune._tfm import load_tfm

        return load_tfm(tfm)
    if hasattr(tfm, "models_"):
        return tfm
    from sklearn.base import clone

    # clone: loading the weights must not change the caller's estimator
    return clone(tfm)


def _check_X(X: Any) -> Any:
    """sklearn's input checks (sparse, complex, empty, 1-D) with its messages; a
    DataFrame is returned as it is, so its column names and dtypes survive."""
    from sklearn.utils.validation import check_array

    if hasattr(X, "iloc") and hasattr(X, "columns"):
        from bridge._table import check_finite

        # Before sklearn's check, whose message names neither column nor row.
        check_finite(X, "X")
    checked = check_array(
        X, dtype=None, ensure_all_finite="allow-nan", ensure_min_samples=1
    )
    if checked.dtype.kind in "fiu":
        with np.errstate(invalid="ignore"):
            bad = np.abs(checked.astype(np.float64)) > np.finfo(np.float32).max
        if bad.any():
            i, j = (int(v) for v in np.argwhere(bad)[0])
            raise ValueError(
                f"X holds infinite values or values beyond float32's range: column "
                f"{j} holds {float(checked[i, j]):g} in row {i}; replace it by a "
                "number (or NaN for a missing value), or rescale the column"
            )
    return X if hasattr(X, "iloc") else checked


def _check_y(y: Any) -> Any:
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import column_or_1d

    if y is None:
        raise ValueError("requires y to be passed, but the target y is None")
    arr = np.asarray(y)
    if arr.dtype.kind in "fc":
        from sklearn.utils.validation import check_array

        check_array(arr, ensure_2d=False, dtype=None, input_name="y")  # NaN / inf
    check_classification_targets(y)
    return y if hasattr(y, "iloc") else column_or_1d(y, warn=True)


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _validation_split(
    y: np.ndarray, fraction: float, seed: int, enc: TableEncoder
) -> tuple[np.ndarray, np.ndarray]:
    if not 0 < fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1), got {fraction}")
    counts = np.bincount(y, minlength=len(enc.classes))
    for c, m in enumerate(counts):
        if m < 2:
            raise ValueError(
                f"too few rows for the validation split: class "
                f"{_plain(enc.classes[c])!r} has {m} training row(s), and "
                f"validation_fraction={fraction} needs at least one row of every "
                "class on each side; add rows, pass X_val and y_val, or use "
                "validation='synthetic' (command line: --validation synthetic)"
            )
    train, val = stratified_split(np.random.default_rng([seed, 3]), y, fraction)
    return np.sort(train), np.sort(val)
