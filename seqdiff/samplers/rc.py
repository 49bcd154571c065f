r"""Reverse-complement (RC) consistent sampling, for DNA or any vocabulary with a complement map.

Write :math:`\mathrm{rc}(x)_i = \mathrm{comp}(x_{L-1-i})` (over the real positions of a
padded row). A denoiser is *RC-equivariant* when
:math:`p_\theta(x^i = v \mid x_t) = p_\theta(x^{L-1-i} = \mathrm{comp}\,v \mid \mathrm{rc}(x_t))`;
Caduceus-PS is by construction, Caduceus-PH after conjoining. With such a model the
MDLM ancestral sampler's output law is RC-symmetric (its reveal times are i.i.d. over
positions), but a score-ordered sampler (EAGS, confidence) breaks exact ties
left-first, which is not symmetric, and a model trained without RC symmetry gives no
symmetry at all. Two remedies, for any model and any sampler:

``average``
    :class:`RCSymmetricDenoiser`: every denoiser call also runs on the reverse-complemented
    state, maps the answer back through the complement map and averages with the
    forward answer: log-probabilities (``combine="logits"``, a renormalised geometric
    mean, i.e. Caduceus-PH's conjoined logits) or probabilities (``combine="probs"``).
    The result is RC-equivariant exactly. Cost: two backbone calls per call.
``strand``
    Each sample is generated, with probability ½, on the reverse strand: the
    condition is reverse-complemented, the sampler runs, the result is
    reverse-complemented back. The output law then satisfies
    :math:`\mathrm{rc}_\#\,P(\cdot \mid c) = P(\cdot \mid \mathrm{rc}(c))` exactly (an
    unconditional law is RC-invariant), for any sampler, at no cost.
``both`` (default)
    Both: an equivariant model, and an exactly symmetric law whatever the tie-breaking.

:class:`RCSymmetricSampler` wraps any sampler (``inner``, a sampler class) with one of
these; ``configs/sampler/eags_rc.yaml`` and ``ancestral_rc.yaml`` are the config switches.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from seqdiff.samplers.base import Condition, Denoiser, Sampler, SamplerState, SamplingContext
from seqdiff.utils.instantiate import check_kwargs, locate
from seqdiff.utils.random import uniform
from seqdiff.vocab import VocabSpec, mirror_index, reverse_complement

MODES = ("average", "strand", "both")
COMBINE = ("logits", "probs")


class RCSymmetricDenoiser:
    """``denoiser`` averaged with its reverse-complement image (see the module docstring)."""

    def __init__(self, denoiser: Denoiser, vocab: VocabSpec, combine: str = "logits") -> None:
        if combine not in COMBINE:
            raise ValueError(f"RCSymmetricDenoiser: combine must be one of {COMBINE}, got {combine!r}")
        self.denoiser = denoiser
        self.comp = vocab.complement_tensor()
        self.combine = combine

    def __call__(self, x_t: Tensor, rate: Tensor, valid: Tensor, positions: Tensor) -> Tensor:
        comp = self.comp.to(x_t.device)
        lp = self.denoiser(x_t, rate, valid, positions)
        idx = mirror_index(valid)
        x_rc = reverse_complement(x_t, comp, valid)
        pos_rc = positions.gather(1, idx)
        lp_rc = self.denoiser(x_rc, rate, valid, pos_rc)
        # rc-frame site (b, j) is original site (b, idx[b, j]); bring rows into the
        # original row-major order, and token v of the rc frame is comp(v) here.
        b, j = pos_rc.nonzero(as_tuple=True)
        order = (b * x_t.shape[1] + idx[b, j]).argsort()
        back = lp_rc[order][:, comp]
        if self.combine == "logits":
            both = 0.5 * (lp.double() + back.double())
            both = torch.where(torch.isnan(both), torch.full_like(both, -math.inf), both)
            return torch.log_softmax(both, dim=-1).to(lp.dtype)
        return (torch.logaddexp(lp.double(), back.double()) - math.log(2.0)).to(lp.dtype)


@dataclass(kw_only=True)
class RCSymmetricState(SamplerState):
    """The wrapper's state: ``inner``, the wrapped sampler's state (on the strand each row is
    generated on; ``x`` is its tokens until the end, then the result on the forward strand);
    ``flip [B]``: rows generated on the reverse strand; ``index [B, L]``: each real
    position's mirror (:func:`mirror_index`)."""

    inner: SamplerState
    flip: Tensor
    index: Tensor


class RCSymmetricSampler(Sampler):
    """Any sampler made reverse-complement consistent (``rc``: average, strand or both).

    Args:
        vocab: as for every sampler.
        inner: the wrapped sampler's class, e.g. ``seqdiff.samplers.EAGSSampler``.
        rc: ``average``, ``strand`` or ``both`` (module docstring).
        combine: ``logits`` or ``probs`` for the averaged denoiser.
        context: what the run knows (:class:`SamplingContext`): the wrapped class's own
            :meth:`~Sampler.context_defaults` are taken from it for the options not given.
        **options: the wrapped sampler's own options (``num_steps``, ``order``, ...),
            checked against its constructor (an unknown key is a ConfigError).
    """

    @classmethod
    def context_defaults(cls, context: SamplingContext) -> dict[str, Any]:
        return {"context": context}  # passed on to the wrapped class's own hook

    def __init__(self, vocab: VocabSpec, *, inner: str | None = None, rc: str = "both", combine: str = "logits",
                 context: SamplingContext | None = None, **options: Any) -> None:
        super().__init__(vocab)
        if "base" in options:  # the key's name before it said what it is (configs of older runs)
            if inner is not None:
                raise ValueError("RCSymmetricSampler: give inner (the wrapped sampler class), not also base")
            warnings.warn("RCSymmetricSampler: 'base' is now 'inner' (the wrapped sampler class)", DeprecationWarning,
                          stacklevel=2)
            inner = options.pop("base")
        inner = inner or "seqdiff.samplers.EAGSSampler"
        if rc not in MODES:
            raise ValueError(f"RCSymmetricSampler: rc must be one of {MODES}, got {rc!r}")
        if combine not in COMBINE:
            raise ValueError(f"RCSymmetricSampler: combine must be one of {COMBINE}, got {combine!r}")
        self.comp = vocab.complement_tensor()  # raises without a complement map
        cls = locate(inner, section="sampler.inner", trusted=("seqdiff.samplers.",))
        if not (isinstance(cls, type) and issubclass(cls, Sampler)) or issubclass(cls, RCSymmetricSampler):
            raise ValueError(f"RCSymmetricSampler: inner {inner!r} is not a sampler class to wrap")
        kwargs = dict(options)
        if context is not None:  # the run's defaults for the wrapped class, under what the config gives
            for key, value in cls.context_defaults(context).items():
                if kwargs.get(key) is None:
                    kwargs[key] = value
        check_kwargs(cls, {"vocab": vocab, **kwargs}, section=f"sampler ({inner})")
        self.inner: Sampler = cls(vocab, **kwargs)
        self.rc = rc
        self.combine = combine

    @property
    def num_steps(self) -> int | None:
        return getattr(self.inner, "num_steps", None)

    @property
    def process_kinds(self) -> tuple[str, ...]:  # type: ignore[override]
        """The wrapped sampler's; with averaging (``average``/``both``) not an autoregressive
        one: its reverse-complement pass would predict each token from the not yet generated
        right-hand side. ``rc=strand`` wraps any sampler."""
        kinds = tuple(self.inner.process_kinds)
        return kinds if self.rc == "strand" else tuple(k for k in kinds if k != "autoregressive")

    def window(self, length: int) -> int:
        return self.inner.window(length)

    def start(self, num_samples: int, length: int, condition: Condition | None = None, *,
              generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> RCSymmetricState:
        cond = (condition or Condition.unconditional(length))
        if cond.length != length:
            raise ValueError(f"sampler: condition has length {cond.length}, requested {length}")
        cond = cond.expand(num_samples, device)
        valid = cond.valid if cond.valid is not None else torch.ones_like(cond.fixed)
        if self.rc in ("strand", "both"):
            flip = uniform((num_samples,), generator=generator, device=device, dtype=torch.float64) < 0.5
        else:
            flip = torch.zeros(num_samples, dtype=torch.bool, device=device)
        idx = mirror_index(valid)
        comp = self.comp.to(cond.tokens.device)
        f = flip.unsqueeze(1)
        tokens = torch.where(f, reverse_complement(cond.tokens, comp, valid), cond.tokens)
        fixed = torch.where(f, cond.fixed.gather(1, idx), cond.fixed)
        inner = self.inner.start(num_samples, length, Condition(tokens, fixed, cond.valid), generator=generator, device=device)
        state = RCSymmetricState.extend(inner, inner=inner, flip=flip, index=idx)
        state.nfe = inner.nfe.clone()  # the wrapper counts its own (two per call when averaging)
        if state.done:
            self._unflip(state)
        return state

    def _unflip(self, state: RCSymmetricState) -> None:
        inner = state.inner
        flip, idx = state.flip.to(inner.x.device), state.index.to(inner.x.device)
        f = flip.unsqueeze(1)
        comp = self.comp.to(inner.x.device)
        state.x = torch.where(f & inner.valid, comp[inner.x.gather(1, idx)], inner.x)
        state.fixed = torch.where(f, inner.fixed.gather(1, idx), inner.fixed)

    def step(self, state: RCSymmetricState, denoiser: Denoiser) -> RCSymmetricState:
        inner = state.inner
        nfe, calls = inner.nfe.clone(), inner.calls
        averaged = self.rc in ("average", "both")
        den = RCSymmetricDenoiser(denoiser, self.vocab, self.combine) if averaged else denoiser
        inner = self.inner.step(inner, den)
        per_call = 2 if averaged else 1  # averaging: two backbone evaluations per call
        state.inner = inner
        state.nfe += per_call * (inner.nfe - nfe)
        state.calls += per_call * (inner.calls - calls)
        state.x, state.step, state.done = inner.x, inner.step, inner.done
        if state.done:
            self._unflip(state)
        return state

    def trace(self, state: RCSymmetricState) -> dict:
        return self.inner.trace(state.inner)
