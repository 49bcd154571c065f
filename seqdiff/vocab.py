"""The vocabulary contract between a domain and the core.

The core only ever sees integer ids. A :class:`VocabSpec` says how many there are and
which ones are special: ``mask_id`` (the absorbing state), ``pad_id`` (never a target,
never attended to), ids the model must never generate, and optionally a complement map
for reverse-complement symmetry (DNA). ``mask_id != pad_id`` is enforced: MDLM's GPT-2
setup silently gave both the same id, so padded positions looked like noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch


@dataclass(frozen=True)
class VocabSpec:
    """Sizes and special ids of a token vocabulary.

    Args:
        size: number of ids, ``0 .. size-1``; the backbone's output dimension.
        mask_id: the absorbing [MASK] id.
        pad_id: padding id, distinct from ``mask_id``.
        never_generate: ids whose probability the denoiser forces to zero (always
            includes ``mask_id`` and ``pad_id``; add BOS/EOS/UNK as a domain sees fit).
        complement: optional ``complement[i]`` = id of the complement of token ``i``
            (an involution over all ids; specials map to themselves).
        tokens: optional human-readable token strings, for checkpoints and errors.
    """

    size: int
    mask_id: int
    pad_id: int
    never_generate: tuple[int, ...] = ()
    complement: tuple[int, ...] | None = None
    tokens: tuple[str, ...] | None = field(default=None, compare=True)

    def __post_init__(self) -> None:
        if self.size < 3:
            raise ValueError(f"VocabSpec: size must be >= 3 (a token, mask and pad), got {self.size}")
        for name in ("mask_id", "pad_id"):
            value = getattr(self, name)
            if not 0 <= value < self.size:
                raise ValueError(f"VocabSpec: {name}={value} outside [0, {self.size})")
        if self.mask_id == self.pad_id:
            raise ValueError(
                f"VocabSpec: mask_id and pad_id must differ (both {self.mask_id}); "
                "padding would be indistinguishable from noise"
            )
        bad = [i for i in self.never_generate if not 0 <= i < self.size]
        if bad:
            raise ValueError(f"VocabSpec: never_generate ids {bad} outside [0, {self.size})")
        forbidden = tuple(sorted({self.mask_id, self.pad_id, *self.never_generate}))
        object.__setattr__(self, "never_generate", forbidden)
        if len(forbidden) >= self.size:
            raise ValueError("VocabSpec: every id is forbidden; nothing could be generated")
        if self.complement is not None:
            comp = tuple(int(c) for c in self.complement)
            if len(comp) != self.size:
                raise ValueError(f"VocabSpec: complement has {len(comp)} entries, expected {self.size}")
            if any(not 0 <= c < self.size for c in comp) or any(comp[c] != i for i, c in enumerate(comp)):
                raise ValueError("VocabSpec: complement must be an involution over ids (comp[comp[i]] == i)")
            for special in (self.mask_id, self.pad_id):
                if comp[special] != special:
                    raise ValueError(f"VocabSpec: complement must fix special id {special}")
            object.__setattr__(self, "complement", comp)
        if self.tokens is not None:
            toks = tuple(str(t) for t in self.tokens)
            if len(toks) != self.size:
                raise ValueError(f"VocabSpec: {len(toks)} token strings for size {self.size}")
            object.__setattr__(self, "tokens", toks)

    @property
    def num_generatable(self) -> int:
        return self.size - len(self.never_generate)

    def forbidden_mask(self, device: torch.device | str | None = None) -> torch.Tensor:
        """Bool ``[size]``: True for ids that must get zero probability."""
        mask = torch.zeros(self.size, dtype=torch.bool, device=device)
        mask[list(self.never_generate)] = True
        return mask

    def log_softmax_allowed(self, logits: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``log_softmax`` over the last axis in ``dtype`` with zero probability (``-inf``) on
        the forbidden ids: every model distribution over tokens (SUBS, the AR next token) and,
        through ``nll_loss``, every cross-entropy against one."""
        logits = logits.to(dtype).masked_fill(self.forbidden_mask(logits.device), float("-inf"))
        return torch.log_softmax(logits, dim=-1)

    def complement_tensor(self, device: torch.device | str | None = None) -> torch.Tensor:
        if self.complement is None:
            raise ValueError("VocabSpec: this vocabulary has no complement map")
        return torch.tensor(self.complement, dtype=torch.long, device=device)

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "mask_id": self.mask_id,
            "pad_id": self.pad_id,
            "never_generate": list(self.never_generate),
            "complement": None if self.complement is None else list(self.complement),
            "tokens": None if self.tokens is None else list(self.tokens),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "VocabSpec":
        return cls(
            size=int(d["size"]),
            mask_id=int(d["mask_id"]),
            pad_id=int(d["pad_id"]),
            never_generate=tuple(d.get("never_generate") or ()),
            complement=None if d.get("complement") is None else tuple(d["complement"]),
            tokens=None if d.get("tokens") is None else tuple(d["tokens"]),
        )

    def describe_difference(self, other: "VocabSpec") -> str | None:
        """A one-line description of how ``other`` differs from this spec, or None."""
        if self == other:
            return None
        for name in ("size", "mask_id", "pad_id", "never_generate", "complement"):
            a, b = getattr(self, name), getattr(other, name)
            if a != b:
                return f"{name} {b!r} vs expected {a!r}"
        if self.tokens != other.tokens and self.tokens is not None and other.tokens is not None:
            diff = [i for i, (a, b) in enumerate(zip(self.tokens, other.tokens)) if a != b]
            i = diff[0]
            return f"token {i} is {other.tokens[i]!r}, expected {self.tokens[i]!r}"
        return None


def mirror_index(valid: torch.Tensor) -> torch.Tensor:
    """``[B, L]`` index: each real position's mirror among the row's real positions (the
    ``j``-th real position <-> the ``(n-1-j)``-th); padding maps to itself. An involution."""
    B, L = valid.shape
    ar = torch.arange(L, device=valid.device).expand(B, L)
    rank = valid.long().cumsum(1) - 1  # j for the j-th real position
    n = valid.sum(1, keepdim=True)
    # position of the k-th real position: sort real positions first, in order
    order = torch.where(valid, ar, ar + L).argsort(dim=1)
    target_rank = (n - 1 - rank).clamp(min=0)
    mirrored = order.gather(1, target_rank)
    return torch.where(valid, mirrored, ar)


def reverse_complement(x: torch.Tensor, comp: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """:math:`\\mathrm{rc}(x)_i = \\mathrm{comp}(x_{L-1-i})` over ids: ``comp[x]`` read backwards.

    Without ``valid`` the whole last axis is reversed (any leading shape). With a bool
    ``valid [B, L]`` each row is reversed over its real positions only and padding stays where
    it is (the general case: a padded row's RC is the RC of its sequence). ``comp`` is the
    complement permutation over ids (:meth:`VocabSpec.complement_tensor`, or a longer one over
    padded embedding rows).
    """
    comp = comp.to(x.device)
    if valid is None:
        return comp[x.flip(-1)]
    out = comp[x.gather(1, mirror_index(valid))]
    return torch.where(valid, out, x)


def check_ids(ids: torch.Tensor | Sequence[int], vocab: VocabSpec, what: str = "tokens") -> None:
    """Raise a clear error if any id is outside the vocabulary."""
    t = torch.as_tensor(ids)
    if t.numel() == 0:
        return
    lo, hi = int(t.min()), int(t.max())
    if lo < 0 or hi >= vocab.size:
        raise ValueError(f"{what}: ids must lie in [0, {vocab.size}), found range [{lo}, {hi}]")
