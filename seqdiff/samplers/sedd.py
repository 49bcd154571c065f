r"""SEDD's samplers for the absorbing graph: analytic (Tweedie tau-leaping) and Euler.

Both walk the grid :math:`t_j=t_{min}+(1-t_{min})j/T` from :math:`j=T` (all [MASK]) down.
At step ``j`` every masked free position, with concrete scores :math:`s_y` from the
denoiser at masking rate :math:`m(t_j)`, is revealed with probability
:math:`\min(1, c_j\sum_y s_y/r_j)` and then takes :math:`y\propto s_y`
(:class:`~seqdiff.processes.sedd.StepLaw` derives :math:`c_j` from SEDD's
``staggered_score * transp_transition`` and ``reverse_rate`` updates). After step 1 the
positions still masked are revealed from the normalised scores at :math:`t_{min}` (SEDD's
``noise_removal`` denoiser step, which drops the [MASK] entry). Revealed tokens never
change, fixed tokens are never touched, padding stays padding. Each step evaluates the
backbone only for the rows that still hold a masked free position; every draw is float64.

The scores come from ``denoiser.score_parts`` (a :class:`ScoreDenoiser`, e.g. a SEDD
model's :meth:`~seqdiff.processes.ScoreEntropyDiffusion.denoiser`) as
:math:`(\log p_\theta, \lambda)` with :math:`s_y=r\,e^{\lambda}p_\theta(y)`,
:math:`r=(1-m)/m`: the reveal probability is :math:`\min(1,c_je^\lambda)` and no
:math:`r` (infinite at :math:`m=0`, zero at :math:`m=1`) is ever formed. Any other
denoiser (an MDLM model, a wrapped one) is read as the mass-conserving score
(:math:`\lambda=0`: :math:`s_y=p_\theta(y)\,(1-m)/m`, MDLM's ``get_score``); the analytic
sampler is then MDLM's ancestral sampler on the same grid. ``num_steps`` and ``t_min`` must equal the process's
for ``process.num_steps=T`` to be this sampler's own bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from seqdiff.samplers.base import Denoiser, Sampler, SamplerState, SamplingContext, sample_categorical
from seqdiff.schedules import PREDICTORS, LogLinearSchedule, Schedule, StepLaw
from seqdiff.utils.random import uniform
from seqdiff.vocab import VocabSpec


@runtime_checkable
class ScoreDenoiser(Protocol):
    """A denoiser that also returns its concrete scores, as ``(log_probs [N, V], log_mass [N])``:
    :math:`s_y = e^{\\lambda} p_\\theta(y)\\,(1-m)/m` at the selected (masked) positions."""

    def __call__(self, x_t: Tensor, rate: Tensor, valid: Tensor, positions: Tensor) -> Tensor: ...

    def score_parts(self, x_t: Tensor, rate: Tensor, valid: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]: ...


@dataclass(kw_only=True)
class SEDDState(SamplerState):
    """``free``: positions to generate ``[B, L]``; ``j``: the grid step the chain is at
    (``T`` down to 0, the final reveal)."""

    free: Tensor
    j: int


class SEDDSampler(Sampler):
    """SEDD predictor loop; subclasses fix ``predictor`` (``"analytic"`` or ``"euler"``).

    Args:
        vocab: vocabulary of the model.
        schedule: the process's noise schedule.
        num_steps: :math:`T`.
        t_min: the final time (the process's ``t_min``).
        greedy_final: the final reveal takes the argmax (SEDD samples; off by default).
        temperature, top_p: applied to every token draw (not to the reveal probability).
    """

    predictor = "analytic"

    @classmethod
    def context_defaults(cls, context: SamplingContext) -> dict[str, Any]:
        return {"schedule": context.schedule}  # the grid's rates are the process's schedule

    def __init__(
        self,
        vocab: VocabSpec,
        schedule: Schedule | None = None,
        num_steps: int = 128,
        *,
        t_min: float = 0.0,
        greedy_final: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
    ) -> None:
        super().__init__(vocab)
        if self.predictor not in PREDICTORS:
            raise ValueError(f"SEDDSampler: predictor must be one of {PREDICTORS}, got {self.predictor!r}")
        self.schedule = schedule if schedule is not None else LogLinearSchedule()
        self.law = StepLaw.build(self.schedule, int(num_steps), float(t_min), self.predictor)
        self.num_steps = int(num_steps)
        self.t_min = float(t_min)
        self.greedy_final = greedy_final
        self.temperature = temperature
        self.top_p = top_p

    def _score_parts(self, denoiser: Denoiser, x, rate, valid, positions) -> tuple[Tensor, Tensor]:
        if isinstance(denoiser, ScoreDenoiser):
            logp, lam = denoiser.score_parts(x, rate, valid, positions)
            return logp.double(), lam.double()
        logp = denoiser(x, rate, valid, positions).double()
        return logp, torch.zeros(logp.shape[:-1], dtype=torch.float64, device=logp.device)

    def init_state(self, state: SamplerState) -> SEDDState:
        free = state.valid & ~state.fixed
        out = SEDDState.extend(state, free=free, j=self.num_steps)
        out.done = not bool(free.any())
        return out

    def step(self, state: SEDDState, denoiser: Denoiser) -> SEDDState:
        j = state.j
        masked = (state.x == self.vocab.mask_id) & state.free
        rows = masked.any(1).nonzero(as_tuple=True)[0]
        if len(rows):
            sub = masked[rows]
            x_rows = state.x[rows]
            rate = self.law.rate[j].to(state.x.device).expand(len(rows))
            if j > 0:
                logp, lam = self._score_parts(denoiser, x_rows, rate, state.valid[rows], sub)
                log_a = self.law.log_reveal(j, lam)
                u = uniform(log_a.shape, generator=state.generator, device=log_a.device, dtype=torch.float64)
                values = sample_categorical(logp, generator=state.generator, temperature=self.temperature,
                                            top_p=self.top_p)
                x_rows[sub] = torch.where(torch.log(u) < log_a, values, x_rows[sub])
            else:  # the final reveal from the normalised scores at t_min
                logp = denoiser(x_rows, rate, state.valid[rows], sub)
                temperature = 0.0 if self.greedy_final else self.temperature
                x_rows[sub] = sample_categorical(logp, generator=state.generator, temperature=temperature,
                                                 top_p=self.top_p)
            state.x[rows] = x_rows
            state.nfe[rows] += 1
            state.calls += 1
        state.step += 1
        state.j = j - 1
        remaining = bool(((state.x == self.vocab.mask_id) & state.free).any())
        state.done = j == 0 or not remaining
        return state


class SEDDAnalyticSampler(SEDDSampler):
    """SEDD's ``analytic`` predictor (Tweedie tau-leaping); see the module doc."""

    predictor = "analytic"


class SEDDEulerSampler(SEDDSampler):
    """SEDD's ``euler`` predictor (first-order reverse-rate step); see the module doc."""

    predictor = "euler"
