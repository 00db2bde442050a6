"""finetune: CausalMixFT fine-tuning of tabular foundation models (PyTorch, TabPFN).

Importing this package is cheap; torch and tabpfn load when a function or class
below is first used.
"""

from __future__ import annotations

from typing import Any

# public name -> (module, attribute)
_LAZY: dict[str, tuple[str, str]] = {
    "CausalMixFTClassifier": ("finetune._estimator", "CausalMixFTClassifier"),
    "finetune": ("finetune._finetune", "finetune"),
    "FinetuneConfig": ("finetune._config", "FinetuneConfig"),
    "FinetuneResult": ("finetune._finetune", "FinetuneResult"),
    "load_tfm": ("finetune._tfm", "load_tfm"),
    "quality_report": ("finetune.quality", "quality_report"),
    "QualityReport": ("finetune.quality", "QualityReport"),
    "write_report": ("finetune.quality", "write_report"),
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        value = getattr(importlib.import_module(module_name), attr)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'finetune' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
