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
import numpy as np

T = TypeVar("T")

# class name -> class; filled by `pytree_dataclass`. `load` refuses names not in here.
REGISTRY: dict[str, type] = {}


def static(*, saved: bool = True, structural: bool = True, **kwargs: Any) -> Any:
    """A dataclass field that is static metadata (part of the treedef), not a leaf.

    `saved=False` marks a record that `jaxscm.save` leaves out (it has its own file).
    `structural=False` marks a record that rides along with the tree without being
    part of its structure: two objects that differ only in it have equal treedefs, so
    jit reuses one compiled function for both and `jax.tree.map` combines them. It
    must not affect any computation. Flattening and unflattening keep it, except
    that a model *returned* from a jitted function carries the record of the call
    that traced it.
    """
    meta = {"static": True, "saved": saved, "structural": structural}
    return dataclasses.field(metadata=meta, **kwargs)


class _Carried:
    """Holds a non-structural record in a treedef; all holders compare equal."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Carried)

    def __hash__(self) -> int:
        return hash(_Carried)

    def __repr__(self) -> str:
        return "<carried record>"


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
    carried = frozenset(
        f.name for f in fields if not f.metadata.get("structural", True)
    )

    def aux_of(obj: Any) -> tuple[Any, ...]:
        return tuple(
            _Carried(getattr(obj, name)) if name in carried else getattr(obj, name)
            for name in meta
        )

    def flatten_with_keys(obj: Any) -> tuple[Any, Any]:
        children = tuple(
            (jax.tree_util.GetAttrKey(name), getattr(obj, name)) for name in data
        )
        return children, aux_of(obj)

    def flatten(obj: Any) -> tuple[Any, Any]:
        return tuple(getattr(obj, name) for name in data), aux_of(obj)

    def unflatten(aux: tuple[Any, ...], children: Any) -> Any:
        # Bypass __init__: JAX unflattens with tracers, None or sentinel leaves, and the
        # invariants checked in __post_init__ hold already for the structure (statics)
        # and need not hold for placeholders.
        obj = object.__new__(dc)
        for name, value in zip(meta, aux, strict=True):
            if isinstance(value, _Carried):
                value = value.value
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


def concrete(*xs: Any) -> bool:
    """Whether none of `xs` is a tracer: values known now, outside any trace."""
    return not any(isinstance(x, jax.core.Tracer) for x in xs)


def to_device(x: Any) -> jax.Array:
    """`jnp.asarray(x)` for host data, without compiling anything.

    Outside a trace, `jnp.asarray` of a NumPy array binds `lax.stage`, which JAX runs
    as a compiled program, one per shape and dtype: 10-40 ms each on a 2-core CPU, and
    a fitted ensemble's arrays have hundreds of shapes. `jax.device_put` copies with
    the same dtype canonicalisation (float64 to float32 unless x64 is on) and the same
    values. JAX arrays and tracers pass through unchanged.
    """
    if isinstance(x, jax.Array):
        return x
    return jax.device_put(np.asarray(x))
