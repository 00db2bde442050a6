"""Immutable dataclass PyTrees, and the registry that save/load uses.

Every mechanism, predictor and noise model in jaxscm is a frozen dataclass whose array
fields are PyTree leaves and whose other fields (strings, ints, tuples) are static
metadata: they become part of the treedef, so jit specialises on them. Registering a
class here also records it by name, which is how `load` rebuilds a model from JSON
without ever importing or unpickling anything else.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import jax

T = TypeVar("T")

# class name -> class; filled by `pytree_dataclass`. `load` refuses names not in here.
REGISTRY: dict[str, type] = {}


def static(*, saved: bool = True, **kwargs: Any) -> Any:
    """A dataclass field that is static metadata (part of the treedef), not a leaf.

    `saved=False` marks a record that `jaxscm.save` leaves out (it has its own file).
    """
    return dataclasses.field(metadata={"static": True, "saved": saved}, **kwargs)


def pytree_dataclass(cls: type[T]) -> type[T]:
    """Makes `cls` a frozen dataclass registered as a JAX PyTree and for persistence.

    Fields declared with `static()` are metadata; all others are leaves (arrays, or
    tuples of arrays, or nested registered dataclasses).
    """
    if cls.__name__ in REGISTRY:
        raise TypeError(f"a jaxscm PyTree class named {cls.__name__!r} already exists")
    # eq=False: array fields make a generated elementwise __eq__ meaningless.
    dc = dataclasses.dataclass(frozen=True, eq=False)(cls)
    fields = dataclasses.fields(dc)
    data = tuple(f.name for f in fields if not f.metadata.get("static", False))
    meta = tuple(f.name for f in fields if f.metadata.get("static", False))

    def flatten_with_keys(obj: Any) -> tuple[Any, Any]:
        children = tuple(
            (jax.tree_util.GetAttrKey(name), getattr(obj, name)) for name in data
        )
        return children, tuple(getattr(obj, name) for name in meta)

    def flatten(obj: Any) -> tuple[Any, Any]:
        return (
            tuple(getattr(obj, name) for name in data),
            tuple(getattr(obj, name) for name in meta),
        )

    def unflatten(aux: tuple[Any, ...], children: Any) -> Any:
        # Bypass __init__: JAX unflattens with tracers, None or sentinel leaves, and the
        # invariants checked in __post_init__ hold already for the structure (statics)
        # and need not hold for placeholders.
        obj = object.__new__(dc)
        for name, value in zip(meta, aux, strict=True):
            object.__setattr__(obj, name, value)
        for name, value in zip(data, children, strict=True):
            object.__setattr__(obj, name, value)
        return obj

    jax.tree_util.register_pytree_with_keys(dc, flatten_with_keys, unflatten, flatten)
    REGISTRY[cls.__name__] = dc
    return dc


def static_fields(obj: Any) -> dict[str, Any]:
    """The static fields of a registered dataclass instance, by name."""
    return {
        f.name: getattr(obj, f.name)
        for f in dataclasses.fields(obj)
        if f.metadata.get("static", False)
    }


def leaf_fields(obj: Any) -> dict[str, Any]:
    """The non-static fields of a registered dataclass instance, by name."""
    return {
        f.name: getattr(obj, f.name)
        for f in dataclasses.fields(obj)
        if not f.metadata.get("static", False)
    }
