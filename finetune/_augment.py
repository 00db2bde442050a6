"""The estimator's ``augment=`` option: which names it takes and what each needs.

``augment`` is "none" (plain fine-tuning), "causalmix" / "scm_only" (the SCM
ensemble, fitted by the estimator itself: `CausalMixFTClassifier._ensemble`), or any
other name of `finetune.augmenters.names()`: that generator is fitted on the training
rows with the estimator's schema and feeds the loop through a
`finetune._sources.GeneratorSource` (a fresh stream or one pool, as the generator's
`streaming` attribute says). Generators other than the SCM have no model to draw
synthetic validation rows or a synthetic inference context from, so those options
are refused for them, as for "none".
"""

from __future__ import annotations

from typing import Any

from finetune._config import FinetuneConfig
from finetune._sources import GeneratorSource, fit_generator, json_safe

SCM_AUGMENTS = ("causalmix", "scm_only")
# fit_scm arguments the estimator sets itself (augment_options may not)
_SCM_OWN = ("columns", "n_dags", "seed")


def augment_names() -> tuple[str, ...]:
    """Every value ``augment=`` takes: "none" and `finetune.augmenters.names()`.

    Examples:
      >>> {"none", "causalmix", "scm_only", "smote"} <= set(augment_names())
      True
    """
    from finetune.augmenters import names

    return ("none", *names())


def check_augment(est: Any) -> None:
    """Refuses an unknown ``augment`` or options that name does not support.

    Raises:
      ValueError: an unknown name (listing `augment_names()`); augment_options
        that are not a dict, given to "none", or that set what the estimator sets;
        a synthetic validation or inference context, per-step members or a fitted
        ``scm=`` with a generator that has no SCM; synthetic_classes with "none".
    """
    name, opts = est.augment, est.augment_options
    if not isinstance(name, str) or name not in augment_names():
        raise ValueError(
            f"augment must be one of {', '.join(augment_names())}; got {name!r}"
        )
    if opts is not None and not isinstance(opts, dict):
        raise ValueError(
            f"augment_options must be a dict or None, got {type(opts).__name__}"
        )
    if name == "none" and opts:
        raise ValueError("augment='none' draws no synthetic rows; drop augment_options")
    if name == "none" and getattr(est, "synthetic_classes", None) is not None:
        raise ValueError(
            "augment='none' draws no synthetic rows; drop synthetic_classes (command "
            "line: --synthetic-classes)"
        )
    if name in SCM_AUGMENTS:
        own = sorted(set(opts or {}) & {*_SCM_OWN, *(est.scm_options or {})})
        if own:
            raise ValueError(
                f"augment_options {own} are set by the estimator or scm_options; "
                "give each fit_scm option once (n_dags= and random_state= are "
                "estimator arguments)"
            )
        return
    what = "augment='none'" if name == "none" else f"the {name} generator"
    fix = "augment='causalmix' (command line: --augment causalmix)"
    if est.validation != "real":
        raise ValueError(
            f"{what} has no SCM for validation={est.validation!r}; use "
            f"validation='real' or {fix}"
        )
    if est.inference_context != "real":
        raise ValueError(
            f"{what} has no SCM for a synthetic inference context; use "
            f"inference_context='real' or {fix}"
        )
    if name != "none" and est.members != "pooled":
        raise ValueError(
            f"members={est.members!r} picks SCM ensemble members, which {what} does "
            "not have; use members='pooled'"
        )
    if est.scm is not None:
        raise ValueError(
            f"scm= is a fitted SCM ensemble for augment='causalmix' or 'scm_only'; "
            f"{what} does not use it - drop scm= or use {fix}"
        )


def scm_options(est: Any) -> dict[str, Any]:
    """The `jaxscm.fit_scm` keyword arguments: scm_options, then augment_options."""
    return {**(est.scm_options or {}), **(est.augment_options or {})}


def generator_source(est: Any, X: Any, y: Any, enc: Any, config: FinetuneConfig) -> Any:
    """The fitted generator of ``est.augment`` on the training rows, as a source.

    Args:
      est: the estimator (its augment, augment_options).
      X: (n, f) float64 encoded training features.
      y: (n,) int64 class codes.
      enc: the estimator's `TableEncoder`.
      config: the run's options (seed, steps, ratio: the most rows of a step).

    Returns:
      A `finetune._sources.GeneratorSource`.
    """
    gen = fit_generator(est.augment, est.augment_options, X, y, enc, seed=config.seed)
    return GeneratorSource(
        gen,
        enc,
        max_rows=max(int(round(config.max_ratio * len(y))), 1),
        max_steps=config.max_steps,
        seed=config.seed,
        options=est.augment_options,
        classes=config.synthetic_classes,
    )


def check_classes(request: Any, enc: Any) -> None:
    """Refuses a ``synthetic_classes`` mapping that names a class the table lacks.

    Args:
      request: `FinetuneConfig.synthetic_classes` (labels as `label` writes them).
      enc: the estimator's `TableEncoder` (its target's labels are the classes).

    Raises:
      ValueError: naming the label, the training classes and the fix.
    """
    if not isinstance(request, dict):
        return
    classes = list(enc.target.categories)
    for k in request:
        if k not in classes:
            raise ValueError(
                f"synthetic_classes names class {k!r}, which is not a training "
                f"class; the classes are {classes} - give shares for those (command "
                "line: --synthetic-classes LABEL=SHARE[,LABEL=SHARE])"
            )


def augment_info(
    est: Any, source: Any, scm: Any, fit_seconds: float, classes: Any = None
) -> dict[str, Any]:
    """What made the run's synthetic rows (the estimator's `augment_info_`);
    `classes` is the run's `FinetuneConfig.synthetic_classes`."""
    name = est.augment
    info: dict[str, Any] = {
        "generator": None if name == "none" else name,
        "mode": None,
        "pool_rows": None,
        "options": json_safe(est.augment_options),
        "fit_seconds": float(fit_seconds) if name != "none" else 0.0,
        "synthetic_classes": classes,
    }
    if source is not None:
        info.update(source.describe())
    elif scm is not None:
        info["mode"] = "stream"
    return info
