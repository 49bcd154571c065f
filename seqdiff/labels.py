r"""Categorical labels per sequence (species, cell type, activity class, style) and their vocabulary.

A labelled run has one or more label *fields* (``species``, ``tissue``), each with its own
names. A batch carries the labels as ids ``label [B, F]`` (one column per field, in the
order of :attr:`LabelSpec.fields`); id ``K_f`` of field ``f`` (one past its last name) is the
learned *no label* id: what label dropout trains on and what the unconditional pass of
classifier-free guidance (:mod:`seqdiff.samplers.guidance`) feeds the model.

Label dropout replaces a row's labels, all fields together, by the no-label ids with
probability ``p``: the network then learns :math:`p(x_0 \mid x_t, y)` and
:math:`p(x_0 \mid x_t)` at once (Ho & Salimans 2022). The uniforms are drawn for the whole
global batch and sliced, so ranks and accumulation steps drop what one process would.

The vocabulary is stored with a run in its configuration (``label.vocab``: field -> names),
so a checkpoint reopens with its labels without reading its data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor

from seqdiff.utils.random import uniform

__all__ = ["LabelSpec", "drop_labels"]


@dataclass(frozen=True)
class LabelSpec:
    """The label vocabulary: ``fields = ((field, (name, ...)), ...)``, in column order."""

    fields: tuple[tuple[str, tuple[str, ...]], ...]

    def __post_init__(self) -> None:
        fields = tuple((str(f), tuple(str(n) for n in names)) for f, names in self.fields)
        object.__setattr__(self, "fields", fields)
        if not fields:
            raise ValueError("labels: at least one label field is needed")
        seen = [f for f, _ in fields]
        if len(set(seen)) != len(seen):
            raise ValueError(f"labels: field names repeat: {seen}")
        for f, names in fields:
            if not names:
                raise ValueError(f"labels: field {f!r} has no label names")
            if len(set(names)) != len(names):
                raise ValueError(f"labels: field {f!r} names repeat: {list(names)}")

    # ------------------------------------------------------------------ building
    @classmethod
    def of(cls, mapping: Mapping[str, Sequence[str]]) -> "LabelSpec":
        """From ``{field: [names]}`` (the ``label.vocab`` of a run's configuration)."""
        if not isinstance(mapping, Mapping):
            raise ValueError(f"labels: expected a mapping field -> names, got {type(mapping).__name__}")
        return cls(tuple((f, tuple(names)) for f, names in mapping.items()))

    def to_dict(self) -> dict[str, list[str]]:
        return {f: list(names) for f, names in self.fields}

    # ------------------------------------------------------------------ reading
    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f for f, _ in self.fields)

    @property
    def sizes(self) -> tuple[int, ...]:
        """Names per field, ``K_f`` (the no-label id of field ``f`` is ``K_f``)."""
        return tuple(len(names) for _, names in self.fields)

    def names(self, field: str) -> tuple[str, ...]:
        return dict(self.fields)[field]

    def null(self, batch: int | None = None, device: torch.device | str | None = None) -> Tensor:
        """The no-label ids, ``[F]`` or ``[batch, F]``."""
        ids = torch.tensor(self.sizes, dtype=torch.long, device=device)
        return ids if batch is None else ids.unsqueeze(0).expand(batch, -1).contiguous()

    def encode(self, label: Any, *, where: str = "label") -> Tensor:
        """Ids ``[F]`` of one label: a name (one-field specs), ``{field: name}`` (fields left out
        get no label), or ``"field:name,field:name"``. Raises a one-line ``ValueError``
        listing the known names for an unknown one."""
        if isinstance(label, str) and label.split(":", 1)[0] in self.field_names and ":" in label:
            label = dict(part.split(":", 1) for part in label.split(",") if part)
        if not isinstance(label, Mapping):
            if len(self.fields) != 1:
                raise ValueError(f"{where}: this run has label fields {list(self.field_names)}; give "
                                 "field:name,field:name (or a dict)")
            label = {self.fields[0][0]: label}
        ids = self.null()
        for key, name in label.items():
            if key not in self.field_names:
                raise ValueError(f"{where}: unknown label field {key!r} (known: {', '.join(self.field_names)})")
            names = self.names(key)
            if str(name) not in names:
                what = "label" if key == "label" else f"{key} label"
                raise ValueError(f"{where}: unknown {what} {str(name)!r} (known: {', '.join(names)})")
            ids[self.field_names.index(key)] = names.index(str(name))
        return ids

    def decode(self, ids: Tensor) -> dict[str, str | None]:
        """``{field: name}`` of ids ``[F]`` (None for no label)."""
        out: dict[str, str | None] = {}
        for (f, names), i in zip(self.fields, ids.tolist()):
            out[f] = names[i] if 0 <= i < len(names) else None
        return out

    def check(self, label: Tensor, *, where: str = "label") -> Tensor:
        """``label`` as ``[B, F]`` long ids, each in ``0..K_f`` (``K_f``: no label); ``[B]`` is
        accepted for a one-field spec. Raises a one-line ``ValueError`` otherwise."""
        label = torch.as_tensor(label).long()
        if label.dim() == 1 and len(self.fields) == 1:
            label = label.unsqueeze(1)
        if label.dim() != 2 or label.shape[1] != len(self.fields):
            raise ValueError(f"{where}: expected label ids [batch, {len(self.fields)}], got shape {tuple(label.shape)}")
        high = torch.tensor(self.sizes, device=label.device)
        if ((label < 0) | (label > high)).any():
            raise ValueError(f"{where}: label ids out of range (field sizes {list(self.sizes)}, the no-label id "
                             "one past the last)")
        return label


def drop_labels(label: Tensor, null: Tensor, p: float, *, generator: torch.Generator | None,
                offset: int = 0, total: int | None = None) -> Tensor:
    """``label [B, F]`` with each row replaced by ``null [F]`` w.p. ``p`` (all fields together).

    The uniforms are those of rows ``offset .. offset+B`` of a global batch of ``total``
    rows, so the rows dropped depend only on their global index."""
    if p <= 0.0:
        return label
    B = label.shape[0]
    u = uniform((total or B,), generator=generator, dtype=torch.float64)[offset : offset + B].to(label.device)
    return torch.where((u < p).unsqueeze(1), null.to(label.device).unsqueeze(0), label)
