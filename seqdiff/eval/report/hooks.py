"""TEMPORARY bridge to the :class:`seqdiff.data.DataSource` hooks, until every data source
subclasses the contract (the contracts branch). A source that does subclass it is called
directly; one that does not yet gets the contract's documented default for a hook it lacks.
Once every source subclasses ``DataSource``, each call here becomes ``data.<hook>(...)`` and this
module goes."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from seqdiff.data import DataSource


def _hook(data: Any, name: str):
    if isinstance(data, DataSource):
        return getattr(data, name)
    own = getattr(data, name, None)
    return own if own is not None else getattr(DataSource, name).__get__(data)


def unit(data: Any) -> str:
    return data.unit if isinstance(data, DataSource) else getattr(data, "unit", DataSource.unit)


def reference(data: Any) -> dict:
    return _hook(data, "reference")()


def score_samples(data: Any, tokens: Tensor) -> dict:
    return _hook(data, "score_samples")(tokens)


def eval_units(data: Any, split: str, max_sequences: int | None) -> tuple[str, Tensor] | None:
    return _hook(data, "eval_units")(split, max_sequences)


def sample_condition(data: Any, n: int, seed: int):
    return _hook(data, "sample_condition")(n, seed)
