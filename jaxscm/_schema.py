"""Column schema: what each node of an SCM means as a table column.

Samples are float arrays. A categorical column holds integer codes 0..k-1 (as floats);
`Column.categories` maps them back to labels, which `bridge.to_frame` does.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

ColumnKind = Literal["numeric", "integer", "categorical"]
_KINDS = ("numeric", "integer", "categorical")


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of the table an SCM generates.

    Attributes:
      name: the column name.
      kind: "numeric" (float), "integer" (whole numbers, e.g. counts) or "categorical"
        (integer codes into `categories`).
      categories: labels of a categorical column, code i <-> categories[i]. Empty for
        the other kinds.
      is_target: whether this is the prediction target.
    """

    name: str
    kind: ColumnKind = "numeric"
    categories: tuple[str, ...] = ()
    is_target: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(
                f"column name must be a non-empty string, got {self.name!r}"
            )
        if self.kind not in _KINDS:
            raise ValueError(
                f"column {self.name!r}: kind must be one of {_KINDS}, got {self.kind!r}"
            )
        if self.kind == "categorical":
            if len(self.categories) < 1:
                raise ValueError(
                    f"column {self.name!r}: a categorical column needs its "
                    f"category labels"
                )
            if len(set(self.categories)) != len(self.categories):
                raise ValueError(f"column {self.name!r}: duplicate category labels")
        elif self.categories:
            raise ValueError(
                f"column {self.name!r}: only categorical columns have categories "
                f"(kind is {self.kind!r})"
            )
        object.__setattr__(self, "categories", tuple(str(c) for c in self.categories))

    @property
    def n_categories(self) -> int:
        """Number of categories (0 for non-categorical columns)."""
        return len(self.categories)

    def to_json(self) -> dict[str, object]:
        """A JSON-serialisable dict."""
        return {
            "name": self.name,
            "kind": self.kind,
            "categories": list(self.categories),
            "is_target": self.is_target,
        }

    @classmethod
    def from_json(cls, d: dict[str, object]) -> Column:
        """Inverse of `to_json`."""
        return cls(
            name=str(d["name"]),
            kind=d["kind"],  # type: ignore[arg-type]  # validated in __post_init__
            categories=tuple(d.get("categories", ())),  # type: ignore[arg-type]
            is_target=bool(d.get("is_target", False)),
        )
