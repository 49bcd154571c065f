r"""Keyword-constrained generation: keywords as hard constraints (fixed tokens).

Domain-free. A keyword is one or more alternative id sequences, its *variants* (a BPE
word with and without its leading space; :func:`keyword_variants` makes them with any
domain's ``encode``). :func:`place_keywords` chooses a non-overlapping span for every
keyword and returns a :class:`~seqdiff.samplers.Condition` fixing them; any sampler then
fills the rest and never changes fixed tokens, so **every keyword is in every sample**
(coverage is 100% by construction, whatever the sampler or the model).

Placement (``placement``):

``model`` (default)
    Greedy, by the model. From the condition's state with every other position [MASK],
    one denoiser call gives :math:`\log p_\theta(x^i = v \mid x_t)` at every free
    position; a (keyword, variant, start) scores
    :math:`\sum_j \log p_\theta(x^{s+j} = w_j \mid x_t)` (the mean-field log-probability
    of writing the keyword there). The keyword with the best score is placed first, at
    its best start and variant (``temperature=0``) or at one drawn with probability
    :math:`\propto \exp(\mathrm{score}/\tau)` (``temperature=τ``; each sample its own
    draw), then written in and the model is called again for the next keyword. Cost:
    one backbone call per keyword. Sums favour short variants, which is the joint
    probability under the model's factorised prediction; longer variants win only when
    the model prefers them (e.g. "␣cat" over "cat" in the middle of a sentence).
``spread``
    Evenly spaced over the free positions in the given order, one free position left
    between neighbours when there is room; variant 0 of each keyword. No model call.
``positions``
    A start per keyword (``None`` entries are placed by ``placement``); negative starts
    count from the end. The variant at a given start is the best-scoring one when a
    denoiser is available, else variant 0.

Keywords never overlap each other, a fixed position of the base condition or padding;
one that cannot fit raises ``ValueError``.

:class:`KeywordCondition` is the not-yet-placed form that the CLI builds from
``condition.keywords`` (it has no model to place them with); :meth:`seqdiff.Run.generate`
resolves it with its own denoiser before sampling. Samplers refuse an unresolved one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import Tensor

from seqdiff.utils.rng import uniform
from seqdiff.samplers.base import Condition, Denoiser
from seqdiff.vocab import VocabSpec

PLACEMENTS = ("model", "spread")
Variants = list[list[int]]


def keyword_variants(domain: Any, word: str, *, where: str = "keyword") -> Variants:
    """The id sequences a word may be written as: ``encode(" " + word)`` (a word inside a
    sentence, for BPE/byte/char tokenizers) and ``encode(word)``, distinct and non-empty.

    Works with any domain's ``encode``; a form the domain rejects (a space in DNA) is
    skipped. Raises ``ValueError`` if neither form encodes.
    """
    word = str(word)
    if not word.strip():
        raise ValueError(f"{where}: empty keyword")
    forms = [word] if word[:1].isspace() else [" " + word, word]
    out: Variants = []
    errors = []
    for text in forms:
        try:
            ids = [int(i) for i in domain.encode(text, where=where)]
        except Exception as e:  # noqa: BLE001 - a domain's own error type (DataError, ValueError)
            errors.append(str(e))
            continue
        if ids and ids not in out:
            out.append(ids)
    if not out:
        raise ValueError(f"{where}: {word!r} cannot be encoded ({errors[-1] if errors else 'empty encoding'})")
    return out


def _as_variants(keywords: Sequence[Any]) -> list[Variants]:
    out = []
    for i, kw in enumerate(keywords):
        kw = kw.tolist() if isinstance(kw, Tensor) else kw
        if not isinstance(kw, (list, tuple)) or len(kw) == 0:
            raise ValueError(f"keywords[{i}]: expected a non-empty list of ids (or of id lists), got {kw!r}")
        variants = [list(kw)] if all(isinstance(v, int) or (isinstance(v, Tensor) and v.dim() == 0) for v in kw) else kw
        norm = []
        for v in variants:
            v = v.tolist() if isinstance(v, Tensor) else v
            if not isinstance(v, (list, tuple)) or not v:
                raise ValueError(f"keywords[{i}]: each variant must be a non-empty list of ids, got {v!r}")
            norm.append([int(t) for t in v])
        out.append(norm)
    return out


def keyword_coverage(tokens: Tensor, keywords: Sequence[Any], *, per_row: bool = False) -> Tensor:
    """Per row of ``tokens [B, L]``: the fraction of keywords (any variant) occurring as a
    contiguous id subsequence. ``per_row``: ``keywords[b]`` are row ``b``'s keywords."""
    rows = tokens.tolist()
    if per_row and len(keywords) != len(rows):
        raise ValueError(f"keyword_coverage: {len(keywords)} keyword lists for {len(rows)} rows")
    shared = None if per_row else _as_variants(keywords)
    out = []
    for b, row in enumerate(rows):
        kws = _as_variants(keywords[b]) if per_row else shared
        hit = sum(1 for variants in kws if any(_contains(row, v) for v in variants))
        out.append(hit / max(1, len(kws)))
    return torch.tensor(out, dtype=torch.float64)


def _contains(row: list[int], ids: list[int]) -> bool:
    m = len(ids)
    return any(row[s : s + m] == ids for s in range(len(row) - m + 1))


# ---------------------------------------------------------------------- placement
def place_keywords(
    keywords: Sequence[Any],
    length: int | None = None,
    *,
    num_samples: int = 1,
    base: Condition | None = None,
    placement: str = "model",
    positions: Sequence[int | None] | None = None,
    denoiser: Denoiser | None = None,
    vocab: VocabSpec | None = None,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> Condition:
    """Fix every keyword at a span of its own; see the module docstring.

    Args:
        keywords: per keyword, a list of ids or a list of variants (lists of ids).
        length: sequence length (default: the base condition's).
        num_samples: rows of the returned condition (each may place differently).
        base: fixed tokens / padding to keep (prefix, [BOS], row lengths).
        placement: ``model`` or ``spread`` for keywords without a given position.
        positions: optional start per keyword (None: placed by ``placement``).
        denoiser, vocab: the model (needed for ``model``; ``vocab`` for the mask id).
        temperature: ``model`` placement: 0 takes the best span, > 0 draws one.
        generator: for the draws.

    Returns a :class:`Condition` with ``[num_samples, L]`` tensors and, as the attribute
    ``spans``, each row's ``(start, end, keyword index, variant index)`` list.
    """
    if placement not in PLACEMENTS:
        raise ValueError(f"keywords: placement must be one of {PLACEMENTS}, got {placement!r}")
    kws = _as_variants(keywords)
    if not kws:
        raise ValueError("keywords: the keyword list is empty")
    unplaced = positions is None or any(p is None for p in positions)
    if placement == "model" and unplaced and (denoiser is None or vocab is None):
        raise ValueError("keywords: placement='model' needs the denoiser and vocab (or use placement='spread')")
    if positions is not None and len(positions) != len(kws):
        raise ValueError(f"keywords: {len(positions)} positions for {len(kws)} keywords")
    if base is None:
        if length is None:
            raise ValueError("keywords: give a length or a base condition")
        base = Condition.unconditional(length)
    if length is not None and base.length != length:
        raise ValueError(f"keywords: base condition has length {base.length}, requested {length}")
    L = base.length
    cond = base.expand(num_samples, device)
    tokens, fixed = cond.tokens.clone(), cond.fixed.clone()
    valid = cond.valid.clone() if cond.valid is not None else torch.ones_like(fixed)
    if vocab is not None:
        bad = [v for kw in kws for var in kw for v in var if not 0 <= v < vocab.size or v in vocab.never_generate]
        if bad:
            raise ValueError(f"keywords: ids {sorted(set(bad))[:5]} are outside the vocabulary or never generated")
    spans: list[list[tuple[int, int, int, int]]] = [[] for _ in range(num_samples)]
    todo = list(range(len(kws)))

    def write(b: int, k: int, v: int, s: int) -> None:
        ids = torch.tensor(kws[k][v], dtype=torch.long, device=tokens.device)
        tokens[b, s : s + len(ids)] = ids
        fixed[b, s : s + len(ids)] = True
        spans[b].append((s, s + len(ids), k, v))

    # 1. keywords the caller placed
    if positions is not None:
        given = [k for k in todo if positions[k] is not None]
        if given:
            scores = (_span_scores(denoiser, vocab, tokens, fixed, valid, [kws[k] for k in given])
                      if denoiser is not None and vocab is not None else None)
            for b in range(num_samples):
                for gi, k in enumerate(given):
                    s = int(positions[k])
                    s = s + L if s < 0 else s
                    free_ok = [v for v, var in enumerate(kws[k]) if _fits(fixed[b], valid[b], s, len(var))]
                    if not free_ok:
                        raise ValueError(f"keywords[{k}]: no variant fits at position {positions[k]} "
                                         f"(length {L}; overlaps a fixed position, another keyword or padding)")
                    if scores is not None:
                        v = max(free_ok, key=lambda v: float(scores[gi][v][b, s]))
                    else:
                        v = free_ok[0]
                    write(b, k, v, s)
        todo = [k for k in todo if positions[k] is None]

    # 2. the rest
    if todo and placement == "spread":
        for b in range(num_samples):
            _spread(b, [(k, kws[k][0]) for k in todo], fixed, valid, fixed[b] & ~cond.fixed[b], write)
    elif todo:
        done = torch.zeros(num_samples, len(todo), dtype=torch.bool)
        for _ in range(len(todo)):  # one backbone call per keyword; each row places its best remaining one
            scores = _span_scores(denoiser, vocab, tokens, fixed, valid, [kws[k] for k in todo])
            for ti in range(len(todo)):
                for sc in scores[ti]:
                    sc[done[:, ti].to(sc.device)] = -math.inf
            for b, (ti, v, s) in enumerate(_choose_spans(scores, temperature, generator)):
                if ti < 0:
                    left = [kws[k][0] for i, k in enumerate(todo) if not done[b, i]]
                    raise ValueError(f"keywords: no room left for keyword ids {left} in a sequence of {L} "
                                     f"({int((valid[b] & ~fixed[b]).sum())} free positions)")
                write(b, todo[ti], v, s)
                done[b, ti] = True
    out = Condition(tokens, fixed, valid if cond.valid is not None or not bool(valid.all()) else None)
    out.spans = [sorted(s) for s in spans]
    return out


def _fits(fixed: Tensor, valid: Tensor, s: int, m: int) -> bool:
    L = fixed.shape[0]
    return 0 <= s and s + m <= L and bool(valid[s : s + m].all()) and not bool(fixed[s : s + m].any())


def _spread(b: int, items: list[tuple[int, list[int]]], fixed: Tensor, valid: Tensor, placed: Tensor, write) -> None:
    """Evenly spaced starts over row ``b``'s free positions (the nearest that fits when
    blocked), not touching another keyword when there is room."""
    free = (valid[b] & ~fixed[b]).nonzero().flatten().tolist()
    F, S, n = len(free), sum(len(ids) for _, ids in items), len(items)
    if S > F:
        raise ValueError(f"keywords: {S} keyword tokens do not fit in {F} free positions")
    gap = (F - S) / (n + 1)
    used = fixed[b].clone()
    kw = placed.clone()  # keyword positions (not the base condition's): keep a gap to them
    L = used.shape[0]
    offset = 0
    for j, (k, ids) in enumerate(items):
        m = len(ids)
        target = min(F - m, int(round(gap * (j + 1))) + offset)
        offset += m
        order = sorted(range(0, F - m + 1), key=lambda t: (abs(t - target), t))
        s = None
        for apart in (True, False):
            for t in order:
                st = free[t]
                if not _fits(used, valid[b], st, m):
                    continue
                if apart and ((st > 0 and bool(kw[st - 1])) or (st + m < L and bool(kw[st + m]))):
                    continue
                s = st
                break
            if s is not None:
                break
        if s is None:
            raise ValueError(f"keywords: keyword ids {ids} do not fit among the free positions")
        used[s : s + m] = True
        kw[s : s + m] = True
        write(b, k, 0, s)


@torch.no_grad()
def _span_scores(denoiser: Denoiser, vocab: VocabSpec, tokens: Tensor, fixed: Tensor, valid: Tensor,
                 keywords: list[Variants]) -> list[list[Tensor]]:
    """``scores[k][v][b, s]``: summed log-probability of keyword ``k``'s variant ``v`` at
    start ``s`` of row ``b`` given the visible tokens (``-inf`` where it does not fit)."""
    B, L = tokens.shape
    free = valid & ~fixed
    x = torch.where(fixed, tokens, torch.full_like(tokens, vocab.mask_id)).masked_fill(~valid, vocab.pad_id)
    ids = sorted({t for kw in keywords for var in kw for t in var})
    col = {t: j for j, t in enumerate(ids)}
    table = torch.full((B, L, len(ids)), -math.inf, dtype=torch.float64, device=tokens.device)
    if free.any():
        rate = (free.sum(1).double() / valid.sum(1).clamp(min=1).double()).to(tokens.device)
        logp = denoiser(x, rate, valid, free)
        table[free] = logp[:, ids].double()
    out = []
    for kw in keywords:
        per = []
        for var in kw:
            m = len(var)
            sc = torch.full((B, L), -math.inf, dtype=torch.float64, device=tokens.device)
            if m <= L:
                acc = torch.zeros(B, L - m + 1, dtype=torch.float64, device=tokens.device)
                for j, t in enumerate(var):
                    acc = acc + table[:, j : L - m + 1 + j, col[t]]
                sc[:, : L - m + 1] = acc
            per.append(sc)
        out.append(per)
    return out


def _choose_spans(scores: list[list[Tensor]], temperature: float, generator) -> list[tuple[int, int, int]]:
    """Per row: the keyword with the best span is placed, at its best (temperature 0) or a
    drawn span. ``(-1, -1, -1)`` when no keyword fits."""
    B, L = scores[0][0].shape
    K = len(scores)
    V = max(len(s) for s in scores)
    full = torch.full((B, K, V, L), -math.inf, dtype=torch.float64, device=scores[0][0].device)
    for k, per in enumerate(scores):
        for v, sc in enumerate(per):
            full[:, k, v] = sc
    best_k = full.flatten(2).max(-1).values  # [B, K]
    out = []
    for b in range(B):
        k = int(best_k[b].argmax())
        if not math.isfinite(float(best_k[b, k])):
            out.append((-1, -1, -1))
            continue
        flat = full[b, k].flatten()  # [V * L]
        if temperature > 0:
            u = uniform(flat.shape, generator=generator, device=flat.device, dtype=torch.float64)
            gumbel = -torch.log(-torch.log(u.clamp_min(torch.finfo(torch.float64).tiny)))
            i = int((flat / temperature + gumbel).argmax())
        else:
            i = int(flat.argmax())  # ties: first variant, leftmost start
        out.append((k, i // L, i % L))
    return out


# ---------------------------------------------------------------------- unresolved form
@dataclass
class KeywordCondition(Condition):
    """Keywords still to be placed on top of a base condition (``tokens``/``fixed``/``valid``).

    Built where no model is at hand (the CLI); :meth:`resolve` (called by
    :meth:`seqdiff.Run.generate`) places them. Samplers refuse it unresolved.
    """

    keywords: list = field(default_factory=list)
    placement: str = "model"
    positions: list | None = None
    temperature: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.keywords = _as_variants(self.keywords)
        if self.placement not in PLACEMENTS:
            raise ValueError(f"keywords: placement must be one of {PLACEMENTS}, got {self.placement!r}")

    def expand(self, batch: int, device=None) -> Condition:
        raise ValueError("sampler: keywords are not placed yet; call KeywordCondition.resolve(denoiser, ...) "
                         "first (Run.generate does)")

    def base(self) -> Condition:
        return Condition(self.tokens, self.fixed, self.valid)

    def resolve(self, denoiser: Denoiser | None, num_samples: int, *, vocab: VocabSpec | None = None,
                generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> Condition:
        return place_keywords(self.keywords, num_samples=num_samples, base=self.base(), placement=self.placement,
                              positions=self.positions, denoiser=denoiser, vocab=vocab, temperature=self.temperature,
                              generator=generator, device=device)
