"""What every sampler shares: fixed-token conditions, float64 categorical draws, the
``start``/``step`` loop on a typed state, and the defaults a run hands a sampler.

A sampler is driven by a *denoiser*: a callable
``denoiser(x_t [b, L], rate [b], valid [b, L], positions [b, L] bool) -> log_probs [N, V]``
returning :math:`\\log p_\\theta(x_0^i \\mid x_t)` for the ``N`` selected positions (row
major). :meth:`seqdiff.processes.Process.denoiser` builds one from a backbone.
Asking only for the positions that are about to be revealed keeps the output
projection (the dominant cost for large vocabularies) off every other position.

**The loop.** :meth:`Sampler.start` builds the common :class:`SamplerState` from the
condition (fixed tokens in place, every free position [MASK], padding as the pad id) and
hands it to :meth:`Sampler.init_state`, which returns the sampler's own state: a
dataclass subclass of :class:`SamplerState` with typed fields (``AncestralState`` has the
free positions, the grid step and the reveal steps). :meth:`Sampler.step` advances it
until ``done``; :meth:`Sampler.trace` reads the per-step diagnostics off it. A wrapper
(reverse-complement symmetry, semi-autoregressive windows) keeps the wrapped sampler's
state as a typed field of its own.

**What a run gives a sampler.** The vocabulary always; anything else the sampler asks for
with :meth:`Sampler.context_defaults` from a :class:`SamplingContext` (the process's
schedule, the trained length, the process kind), for the constructor arguments the
configuration leaves unset.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Protocol, TypeVar

import torch
from torch import Tensor

from seqdiff.schedules import Schedule
from seqdiff.utils.random import gumbel_argmax
from seqdiff.vocab import VocabSpec


class Denoiser(Protocol):
    def __call__(self, x_t: Tensor, rate: Tensor, valid: Tensor, positions: Tensor) -> Tensor: ...


@dataclass
class Condition:
    """Tokens the caller fixes: ``fixed[b, i]`` True means position ``i`` of sample ``b``
    is ``tokens[b, i]`` from the start and is never changed by any sampler.

    ``valid`` (optional) marks real positions; False positions are padding (excluded
    from attention, left as the pad id). Tensors may be ``[L]`` (shared by the batch).

    ``label`` (optional): the label every sample is drawn under (a name, ``{field: name}``,
    or ids ``[F]``; :mod:`seqdiff.labels`). Samplers never read it: :meth:`seqdiff.Run.generate`
    builds the conditional (or guided, :mod:`seqdiff.samplers.guidance`) denoiser from it.
    """

    tokens: Tensor
    fixed: Tensor
    valid: Tensor | None = None
    label: Any = None

    def __post_init__(self) -> None:
        self.tokens = torch.as_tensor(self.tokens, dtype=torch.long)
        self.fixed = torch.as_tensor(self.fixed, dtype=torch.bool)
        if self.tokens.shape != self.fixed.shape:
            raise ValueError(f"Condition: tokens {tuple(self.tokens.shape)} and fixed {tuple(self.fixed.shape)} differ")
        if self.valid is not None:
            self.valid = torch.as_tensor(self.valid, dtype=torch.bool)
            if self.valid.shape != self.tokens.shape:
                raise ValueError("Condition: valid must have the same shape as tokens")
            if (self.fixed & ~self.valid).any():
                raise ValueError("Condition: a fixed position is marked as padding")

    @property
    def length(self) -> int:
        return int(self.tokens.shape[-1])

    def expand(self, batch: int, device: torch.device | str | None = None) -> "Condition":
        def grow(t: Tensor | None) -> Tensor | None:
            if t is None:
                return None
            t = t.unsqueeze(0).expand(batch, -1) if t.dim() == 1 else t
            if t.shape[0] != batch:
                raise ValueError(f"Condition: batch {t.shape[0]} does not match {batch} samples")
            return t.to(device)

        return Condition(grow(self.tokens), grow(self.fixed), grow(self.valid), self.label)

    @classmethod
    def unconditional(cls, length: int) -> "Condition":
        return cls(torch.zeros(length, dtype=torch.long), torch.zeros(length, dtype=torch.bool))

    @classmethod
    def from_segments(cls, length: int, segments: dict[int, list[int] | Tensor]) -> "Condition":
        """Fix ``segments[start] = ids`` at ``start .. start+len(ids)-1`` (negative starts
        count from the end). Prefix: ``{0: ids}``; suffix: ``{-len(ids): ids}``; infill
        between flanks: ``{0: left, -len(right): right}``; a motif anywhere: ``{pos: motif}``."""
        tokens = torch.zeros(length, dtype=torch.long)
        fixed = torch.zeros(length, dtype=torch.bool)
        for start, ids in segments.items():
            ids = torch.as_tensor(ids, dtype=torch.long).flatten()
            s = start + length if start < 0 else start
            if s < 0 or s + len(ids) > length:
                raise ValueError(f"Condition: segment at {start} of length {len(ids)} does not fit in {length}")
            if fixed[s : s + len(ids)].any():
                raise ValueError(f"Condition: segment at {start} overlaps another fixed segment")
            tokens[s : s + len(ids)] = ids
            fixed[s : s + len(ids)] = True
        return cls(tokens, fixed)


def sample_categorical(
    log_probs: Tensor,
    *,
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
    top_p: float = 1.0,
) -> Tensor:
    """Draw one id per row of ``log_probs [N, V]`` in float64 (Gumbel-max).

    MDLM drew Gumbel noise in float32, which truncates the noise tail and silently
    lowers the sampling temperature (Zheng et al. 2024); float64 removes that bias.
    ``temperature=0`` is argmax; ``top_p < 1`` is nucleus sampling.
    """
    if log_probs.numel() == 0:
        return torch.zeros(log_probs.shape[:-1], dtype=torch.long, device=log_probs.device)
    logp = log_probs.double()
    if temperature == 0.0:
        return logp.argmax(-1)
    if temperature != 1.0:
        logp = torch.log_softmax(logp / temperature, dim=-1)
    if top_p < 1.0:
        logp = _nucleus(logp, top_p)
    return gumbel_argmax(logp, generator=generator)


def _nucleus(logp: Tensor, top_p: float) -> Tensor:
    sorted_logp, order = torch.sort(logp, dim=-1, descending=True)
    cum = sorted_logp.exp().cumsum(-1)
    drop = (cum - sorted_logp.exp()) >= top_p  # keep the smallest prefix reaching top_p
    sorted_logp = sorted_logp.masked_fill(drop, float("-inf"))
    out = torch.full_like(logp, float("-inf")).scatter(-1, order, sorted_logp)
    return torch.log_softmax(out, dim=-1)


@dataclass
class SamplerState:
    """The state every sampler shares; each sampler extends it with a typed dataclass of
    its own (``@dataclass(kw_only=True) class MyState(SamplerState)``), built in
    :meth:`Sampler.init_state` with :meth:`extend`.

    ``x``: current tokens; ``fixed``/``valid``: the condition; ``step``: steps taken;
    ``nfe``: backbone evaluations per sequence; ``calls``: batched backbone invocations.
    """

    x: Tensor
    fixed: Tensor
    valid: Tensor
    generator: torch.Generator | None
    step: int = 0
    nfe: Tensor | None = None
    calls: int = 0
    done: bool = False

    @classmethod
    def extend(cls: type[S], state: "SamplerState", **own: Any) -> S:
        """A ``cls`` with ``state``'s common fields (the same tensors) and ``own`` fields."""
        return cls(**{f.name: getattr(state, f.name) for f in fields(SamplerState)}, **own)


S = TypeVar("S", bound=SamplerState)


@dataclass(frozen=True)
class SamplingContext:
    """What the run knows that a sampler may want (:meth:`Sampler.context_defaults`).

    Attributes:
        vocab: the model's vocabulary (always passed to the sampler as ``vocab``).
        schedule: the process's noise schedule, or None (e.g. autoregressive).
        trained_length: the length the model was trained on (``data.seq_len``), if known.
        process_kind: ``process.kind`` (``"masked"``, ``"autoregressive"``, ...).
    """

    vocab: VocabSpec
    schedule: Schedule | None = None
    trained_length: int | None = None
    process_kind: str = "masked"


@dataclass
class SampleOutput:
    tokens: Tensor
    nfe: Tensor
    calls: int
    steps: int
    trace: dict = field(default_factory=dict)


class Sampler(ABC):
    """``start`` builds the initial state, ``step`` advances it, ``sample`` runs to the end.

    ``process_kinds`` declares which processes (``process.kind``) a sampler can draw
    from; :meth:`seqdiff.Run.build_sampler` checks it, so a subclass inherits the
    capability and a wrapper delegates it to the sampler it wraps.

    Contract of :meth:`step`: positions with ``fixed`` True and padding (``valid`` False)
    never change; ``nfe`` counts the backbone evaluations each sequence took and ``calls``
    the batched denoiser invocations; ``done`` is set once every free position holds a
    token that is not [MASK] (and any refinement is over).
    """

    #: ``process.kind`` values this sampler draws from: by default the absorbing-state processes,
    #: whose denoiser gives :math:`\log p_\theta(x_0 \mid x_t)` (MDLM, and SEDD read through the
    #: same contract: :mod:`seqdiff.processes.sedd`).
    process_kinds: tuple[str, ...] = ("masked", "sedd")

    def __init__(self, vocab: VocabSpec) -> None:
        self.vocab = vocab

    @classmethod
    def context_defaults(cls, context: SamplingContext) -> dict[str, Any]:
        """Constructor arguments this sampler takes from the run, by name, for those its
        configuration leaves unset (absent or null): e.g. ``{"schedule":
        context.schedule}`` for a sampler that follows the process's noise schedule.
        :meth:`seqdiff.Run.build_sampler` calls it; ``vocab`` is always given. Default:
        nothing else."""
        return {}

    def start(
        self,
        num_samples: int,
        length: int,
        condition: Condition | None = None,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
    ) -> SamplerState:
        cond = (condition or Condition.unconditional(length))
        if cond.length != length:
            raise ValueError(f"sampler: condition has length {cond.length}, requested {length}")
        cond = cond.expand(num_samples, device)
        valid = cond.valid if cond.valid is not None else torch.ones_like(cond.fixed)
        x = torch.where(cond.fixed, cond.tokens, torch.full_like(cond.tokens, self.vocab.mask_id))
        x = x.masked_fill(~valid, self.vocab.pad_id)
        forbidden = self.vocab.forbidden_mask(x.device)[cond.tokens] & cond.fixed
        if forbidden.any():
            raise ValueError("sampler: a fixed token is an id the model may never generate (mask/pad)")
        state = SamplerState(x=x, fixed=cond.fixed, valid=valid, generator=generator,
                             nfe=torch.zeros(num_samples, dtype=torch.long, device=x.device))
        return self.init_state(state)

    def window(self, length: int) -> int:
        """The most positions one denoiser call reads when sampling ``length`` tokens: the
        whole sequence, unless the sampler works in windows (semi-AR)."""
        return length

    def init_state(self, state: SamplerState) -> SamplerState:
        """This sampler's state, from the common one :meth:`start` built (its tensors are
        the run's: keep them, e.g. with ``MyState.extend(state, ...)``); may set ``done``
        when there is nothing to sample. Default: the common state as is."""
        return state

    @abstractmethod
    def step(self, state: SamplerState, denoiser: Denoiser) -> SamplerState:
        """Advance one step (sets ``state.done`` at the end)."""

    def trace(self, state: SamplerState) -> dict:
        """Per-step diagnostics a sampler records (e.g. entropies, energies)."""
        return {}

    @torch.no_grad()
    def sample(
        self,
        denoiser: Denoiser,
        num_samples: int,
        length: int,
        condition: Condition | None = None,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
        callback: Callable[[SamplerState], None] | None = None,
    ) -> SampleOutput:
        state = self.start(num_samples, length, condition, generator=generator, device=device)
        while not state.done:
            state = self.step(state, denoiser)
            if callback is not None:
                callback(state)
        return SampleOutput(tokens=state.x, nfe=state.nfe, calls=state.calls, steps=state.step, trace=self.trace(state))
