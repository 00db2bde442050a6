"""Checks that a model's fitted parameters are usable numbers.

A NaN or infinite coefficient, a negative noise scale or a non-positive shape
parameter never raises inside `jaxscm.sample`: it silently turns rows (or a whole
column) into NaN, or a target into a constant. `check_parameters` walks a model once,
on the host, where it is made (`distill`, `fit_scm`) and where it is read back
(`jaxscm.load`), and names the node and the field of the first bad value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np

from jaxscm._pytree import REGISTRY


class ParameterError(ValueError):
    """A fitted parameter is not finite, or out of its valid range."""


def check_parameters(model: Any) -> None:
    """Raises `ParameterError` naming the node and field of the first bad parameter.

    Every floating-point leaf must be finite (inside a classifier an output bias
    may be -inf: a padded class with probability exactly 0); a parametric noise model's
    `scale` must be >= 0 and its shape parameters (`df`, `a`, `b`, `s`) > 0.

    Args:
      model: an `SCM`, an `Ensemble` or any registered jaxscm PyTree.

    Raises:
      ParameterError: the message names the node (or ensemble member and column) and
        the field.

    Examples:
      >>> import jax
      >>> from jaxscm import random_scm
      >>> check_parameters(random_scm(jax.random.key(0), 3))  # passes silently
    """
    for path, obj, in_classifier in _walk(model, "", False):
        if type(obj).__name__ == "Parametric":
            _check_noise(model, path, obj)
            continue
        if type(obj).__name__ in ("Mapped", "PointMass"):
            _check_marginal(model, path, obj)
        if not _is_array(obj):
            continue
        a = np.asarray(obj)
        if not np.issubdtype(a.dtype, np.floating) or a.size == 0:
            continue
        bad = ~np.isfinite(a)
        if in_classifier and _is_bias(path):
            bad &= ~np.isneginf(a)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ParameterError(
                f"{_where(model, path, idx)}: field {path.lstrip('.')} holds a "
                f"non-finite value ({a[idx]}); the model is corrupted or its fit "
                f"diverged - refit it (or rescale the column)"
            )


def _check_noise(model: Any, path: str, noise: Any) -> None:
    for name, value, low, strict in [
        ("scale", noise.scale, 0.0, False),
        *((f"shapes.{i}", s, 0.0, True) for i, s in enumerate(noise.shapes)),
        ("loc", noise.loc, None, False),
    ]:
        a = np.atleast_1d(np.asarray(value))
        field = f"{path}.{name}".lstrip(".")
        bad = ~np.isfinite(a)
        if low is not None:
            bad |= (a <= low) if strict else (a < low)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            need = "finite" if low is None else (">0" if strict else ">= 0")
            raise ParameterError(
                f"{_where(model, path, idx)}: noise field {field} is {a[idx]}, must be "
                f"{need} ({noise.family} noise); the model is corrupted - refit it"
            )


def _check_marginal(model: Any, path: str, obj: Any) -> None:
    """Knots strictly increasing, support sorted, lo <= hi, residual count in range
    (along the last axis: an ensemble's leaves carry a member axis first)."""
    checks = []
    if type(obj).__name__ == "Mapped":
        warped = np.asarray(obj.warped, bool)
        bad_knots = ~(np.diff(np.asarray(obj.warp_x), axis=-1) > 0).all(-1) & warped
        checks += [
            ("warp_x", bad_knots, "strictly increasing"),
            (
                "warp_y",
                ~(np.diff(np.asarray(obj.warp_y), axis=-1) >= 0).all(-1) & warped,
                "non-decreasing",
            ),
            (
                "support",
                ~(np.diff(np.asarray(obj.support), axis=-1) >= 0).all(-1),
                "sorted",
            ),
            (
                "hi",
                (np.asarray(obj.lo) > np.asarray(obj.hi))
                & np.asarray(obj.clipped, bool),
                ">= lo",
            ),
        ]
    else:
        count = np.asarray(obj.count)
        size = np.shape(obj.rest.noise.values)[-1]
        checks.append(("count", (count < 1) | (count > size), f"in [1, {size}]"))
    for name, bad, need in checks:
        bad = np.atleast_1d(bad)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ParameterError(
                f"{_where(model, path, idx)}: field {path.lstrip('.')}.{name} must "
                f"be {need}; the model is corrupted - refit it"
            )


def _is_bias(path: str) -> bool:
    # where `jaxscm._canonical` pads logits with -inf: intercept, base, biases.N
    parts = path.split(".")
    return parts[-1] in ("intercept", "base") or (
        len(parts) > 1 and parts[-2] == "biases"
    )


def _is_array(obj: Any) -> bool:
    return hasattr(obj, "shape") and hasattr(obj, "dtype")


_CLASSIFIERS = ("Classifier", "CodeClassifier")


def _walk(obj: Any, path: str, clf: bool) -> Iterator[tuple[str, Any, bool]]:
    if dataclasses.is_dataclass(obj) and type(obj).__name__ in REGISTRY:
        yield path, obj, clf
        clf = clf or type(obj).__name__ in _CLASSIFIERS
        for f in dataclasses.fields(obj):
            if f.metadata.get("static", False):
                continue
            yield from _walk(getattr(obj, f.name), f"{path}.{f.name}", clf)
    elif isinstance(obj, (tuple, list)):
        for i, v in enumerate(obj):
            yield from _walk(v, f"{path}.{i}", clf)
    elif _is_array(obj):
        yield path, obj, clf


def _where(model: Any, path: str, idx: tuple[int, ...]) -> str:
    """'node NAME' for an SCM, 'ensemble member B, column NAME' for an Ensemble."""
    parts = path.lstrip(".").split(".")
    kind = type(model).__name__
    try:
        if kind == "SCM" and parts[0] == "mechanisms":
            i = int(parts[1])
            return f"node {model.columns[i].name!r} (index {i})"
        if kind == "Ensemble" and parts[0] == "groups":
            t, g = int(parts[1]), int(parts[2])
            b = idx[0] if idx else 0  # stacked leaves: the member axis comes first
            order, group = np.asarray(model.order), np.asarray(model.group)
            if group[b, t] != g:  # a padded slot of a group this member does not use
                members = np.flatnonzero(group[:, t] == g)
                b = int(members[0]) if members.size else b
            name = model.columns[int(order[b, t])].name
            return f"ensemble member {b}, node {name!r}"
    except (IndexError, ValueError, AttributeError):
        pass
    return f"{kind} model"
