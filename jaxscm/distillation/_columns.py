"""Columns and categories at the DoWhy boundary of `distill`.

DoWhy works on category labels, the SCM on integer codes: code `i` of a categorical
column is the label `Column.categories[i]`. This module infers the columns of a
fitted gcm model when the caller gives none (DoWhy values map to SCM values through
the schema's own codec, `Column.code_of`), and turns DoWhy's encoders of categorical
parents (one-hot, or its CatBoost target encoding;
`dowhy.gcm.util.general.auto_apply_encoders`) into an `Encode` lookup step that gives
the sklearn model the same inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxscm._features import Encode
from jaxscm._schema import Column, label, ordered_labels


def mechanism_of(causal_model: Any, node: Any, where: str) -> Any:
    try:
        return causal_model.causal_mechanism(node)
    except KeyError:
        raise ValueError(
            f"{where} has no causal mechanism; assign one (gcm.auto.assign_causal_"
            f"mechanisms) and fit (gcm.fit) before distilling"
        ) from None


def resolve_columns(
    causal_model: Any,
    graph: Any,
    names: dict[Any, str],
    schema: Sequence[Column] | None,
) -> dict[str, Column]:
    if schema is not None:
        cols = {c.name: c for c in schema}
        if len(cols) != len(schema):
            raise ValueError("schema has duplicate column names")
        missing = sorted(set(names.values()) - set(cols))
        extra = sorted(set(cols) - set(names.values()))
        if missing or extra:
            raise ValueError(
                f"schema does not match the graph: nodes without a column {missing}, "
                f"columns without a node {extra}"
            )
        return cols
    return {
        names[v]: _infer_column(
            mechanism_of(causal_model, v, f"node {names[v]!r}"), names[v]
        )
        for v in graph.nodes
    }


def _infer_column(mech: Any, name: str) -> Column:
    from dowhy.gcm import (
        ClassifierFCM,
        DiscreteAdditiveNoiseModel,
        EmpiricalDistribution,
    )

    if isinstance(mech, ClassifierFCM):
        classes = classes_of(mech.classifier_model, f"node {name!r}")
        return Column(name, "categorical", tuple(label(c) for c in classes))
    if isinstance(mech, DiscreteAdditiveNoiseModel):
        return Column(name, "integer")
    if isinstance(mech, EmpiricalDistribution) and mech.data is not None:
        data = np.asarray(mech.data).ravel()
        if data.size and isinstance(data[0], (str, bool, np.bool_)):
            return Column(name, "categorical", ordered_labels(data))
        if np.issubdtype(data.dtype, np.integer):
            return Column(name, "integer")
    return Column(name)


def classes_of(classifier_model: Any, where: str) -> np.ndarray:
    try:
        return np.asarray(classifier_model.classes)
    except AttributeError as err:
        raise ValueError(
            f"{where}: the classifier is not fitted ({err}); call gcm.fit"
        ) from None


def encoders(model: Any, ctx: Any) -> Encode | None:
    """The `Encode` step equivalent to DoWhy's encoders of categorical parents."""
    from dowhy.gcm.util.catboost_encoder import CatBoostEncoder
    from sklearn.preprocessing import OneHotEncoder

    encoders = dict(getattr(model, "_encoders", {}) or {})
    tables, cols = [], []
    for j, col in enumerate(ctx.parent_columns):
        enc = encoders.pop(j, None)
        where = f"{ctx.where}, parent {col.name!r}"
        if enc is None:
            if col.kind == "categorical":
                # DoWhy saw this parent as numbers (numeric labels): feed the label's
                # value, which is what the sklearn model was fitted on.
                try:
                    values = [float(c) for c in col.categories]
                except ValueError:
                    raise ValueError(
                        f"{where}: the schema says categorical, but the fitted "
                        f"model has "
                        f"no encoder for it and its labels are not numbers"
                    ) from None
                tables.append(ctx.array(np.asarray(values)[:, None]))
                cols.append(j)
            continue
        if col.kind != "categorical":
            raise ValueError(
                f"{where}: the fitted model encodes this parent as categorical, but "
                f"the schema says {col.kind!r}"
            )
        if isinstance(enc, OneHotEncoder):
            if len(enc.categories_) != 1 or enc.drop is not None:
                raise NotImplementedError(
                    f"{where}: OneHotEncoder with drop= or several columns"
                )
            known = [label(c) for c in enc.categories_[0]]
            table = np.array([[float(c == k) for k in known] for c in col.categories])
        elif isinstance(enc, CatBoostEncoder):
            means = {label(k): float(v) for k, v in enc._category_means.items()}
            table = np.array(
                [[means.get(c, float(enc._alpha))] for c in col.categories]
            )
        else:
            raise NotImplementedError(
                f"{where}: no exact conversion for the encoder {type(enc).__qualname__}"
            )
        tables.append(ctx.array(table))
        cols.append(j)
    if encoders:
        raise ValueError(
            f"{ctx.where}: the fitted model has encoders for input columns "
            f"{sorted(encoders)} but only {len(ctx.parents)} parents"
        )
    if not cols:
        return None
    return Encode(tables=tuple(tables), columns=tuple(cols))
