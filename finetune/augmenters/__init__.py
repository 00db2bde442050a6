"""Tabular generators behind one interface, for augmentation and comparison.

    gen = finetune.augmenters.make("smote")
    gen.fit(X, y, seed=0)
    X_new, y_new = gen.sample(500, seed=1, y="balanced")

`names()` lists the registered generators; each is a `Generator` (`_base`): it
learns the table through the project's one schema and gives back rows with the
training columns, dtypes and categories. A generator's module is imported only when
it is made, so listing names never imports torch, ctgan or flax.
"""

from __future__ import annotations

import importlib
from typing import Any

from finetune.augmenters._base import CONDITIONAL, Generator, class_codes

# name -> (module, class); filled as generators are added
_REGISTRY: dict[str, tuple[str, str]] = {
    "causalmix": ("finetune.augmenters._scm", "CausalMix"),
    "ctgan": ("finetune.augmenters._ctgan", "CTGAN"),
    "gaussian_copula": ("finetune.augmenters._copula", "GaussianCopula"),
    "mixed_model": ("finetune.augmenters._mixed_model", "MixedModel"),
    "mixup": ("finetune.augmenters._mixup", "Mixup"),
    "scm_only": ("finetune.augmenters._scm", "ScmOnly"),
    "smote": ("finetune.augmenters._smote", "Smote"),
    "table_augment": ("finetune.augmenters._table_augment", "TableAugment"),
    "tabddpm": ("finetune.augmenters._tabddpm", "TabDDPM"),
    "tabebm": ("finetune.augmenters._tabebm", "TabEBM"),
}


def names() -> tuple[str, ...]:
    """The registered generator names, sorted."""
    return tuple(sorted(_REGISTRY))


def make(name: str, **options: Any) -> Generator:
    """A new, unfitted generator.

    Args:
      name: one of `names()`.
      **options: the generator's own options (see its class).

    Returns:
      The generator.

    Raises:
      ValueError: an unknown name (the message lists the known ones).
    """
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown generator {name!r}; known generators: {', '.join(names())}"
        )
    module, cls = _REGISTRY[name]
    return getattr(importlib.import_module(module), cls)(**options)


__all__ = ["CONDITIONAL", "Generator", "class_codes", "make", "names"]
