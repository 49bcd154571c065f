r"""ReMDM remasking (Wang et al. 2025, ``kuleshov-group/remdm``): an ancestral sampler whose
revealed tokens may be masked again, so later steps can correct them.

On the grid :math:`t_j = j/T` with :math:`\alpha_j = \alpha(t_j)` (the process's schedule,
:math:`\alpha_0 = 1`), one step from :math:`t = t_j` to :math:`s = t_{j-1}` draws every free
position independently from

.. math::
   q_\sigma(z_s \mid z_t, x_0) = \begin{cases}
     (1 - \sigma)\,\delta_{z_t} + \sigma\,\delta_{[M]} & z_t \ne [M] \text{ (remask with prob. } \sigma)\\
     \frac{\alpha_s - (1-\sigma)\alpha_t}{1-\alpha_t}\,p_\theta(x_0 \mid z_t)
       + \frac{1 - \alpha_s - \sigma\alpha_t}{1-\alpha_t}\,\delta_{[M]} & z_t = [M],
   \end{cases}

which keeps the forward marginals :math:`q(z_s \ne [M]) = \alpha_s` for any
:math:`0 \le \sigma \le \sigma_{\max} = \min\{1, (1-\alpha_s)/\alpha_t\}`. With
:math:`\sigma = 0` it is MDLM's ancestral step. ``strategy`` picks :math:`\sigma` (the
published script defaults for ``eta``):

- ``cap`` (:math:`\eta = 0.008`): :math:`\sigma = \min(\eta, \sigma_{\max})`.
- ``rescale`` (:math:`\eta = 0.015`): :math:`\sigma = \eta\,\sigma_{\max}`.
- ``conf`` (:math:`\eta = 1`): per revealed token,
  :math:`\sigma^\ell = \eta\,\sigma_{\max}\,\mathrm{softmax}_\ell(-\psi^\ell)` over the row's
  revealed tokens, :math:`\psi^\ell` the probability the model gave the token when it was
  drawn (the least confident are remasked first); masked positions reveal at the MDLM rate
  (:math:`\sigma = 0` for them), as in the reference code, so the forward marginals are kept
  only approximately.
- ``loop`` (:math:`\eta = 0.02, t_{on} = 0.55, t_{off} = 0.05, \alpha_{on} = 0.9`): the time
  map is changed so that :math:`\alpha` falls from 1 to :math:`\alpha_{on}` over
  :math:`t \in [0, t_{off}]`, stays at :math:`\alpha_{on}` on :math:`(t_{off}, t_{on}]`, and
  falls to 0 over :math:`(t_{on}, 1]`, each ramp shaped by the process's schedule
  (:math:`A(u) = (\alpha(u) - \alpha(1))/(1 - \alpha(1))`; linear for the log-linear one,
  the reference code's). Steps starting in the plateau use :math:`\sigma = \min(\eta, \sigma_{\max})`
  (at a constant :math:`\alpha` they only remask and re-reveal, at rate :math:`\eta`); the
  others are MDLM steps.

Positions fixed by the condition and padding are never remasked. What is exact: with
``eta = 0`` every strategy is the uncached ancestral sampler on its grid (tested in
distribution on an enumerable toy); with an exact denoiser and :math:`T \to \infty` the
remasking steps leave the marginals invariant, and the toy test checks that a long loop
run still samples the joint. Otherwise, like every parallel sampler, it is not exact.

A step makes a backbone call only for the rows that reveal something (one NFE each; the
reveal and remask decisions do not read the model), so a step that only remasks is free.
The loop ends at :math:`t = 0`, or earlier once nothing is masked and no later step can remask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from seqdiff.samplers.base import Denoiser, Sampler, SamplerState, SamplingContext, sample_categorical
from seqdiff.schedules import LogLinearSchedule, Schedule
from seqdiff.utils.random import uniform
from seqdiff.vocab import VocabSpec

STRATEGIES = ("cap", "rescale", "conf", "loop")
DEFAULT_ETA = {"cap": 0.008, "rescale": 0.015, "conf": 1.0, "loop": 0.02}


@dataclass(kw_only=True)
class ReMDMState(SamplerState):
    """``free``: positions to generate; ``j``: the grid step (``T`` down to 0); ``psi``: the
    probability each revealed free token had when drawn (``conf``; NaN while masked);
    ``remasked``: tokens each row remasked per step (list of ``[B]``)."""

    free: Tensor
    j: int
    psi: Tensor
    remasked: list[Tensor] = field(default_factory=list)


class ReMDMSampler(Sampler):
    """ReMDM remasking on the MDLM grid (see the module docstring).

    Args:
        vocab, schedule: the model's vocabulary and the process's schedule.
        num_steps: ``T``.
        strategy: ``cap`` | ``rescale`` | ``conf`` | ``loop``.
        eta: the remasking scale (null: the strategy's published default, :data:`DEFAULT_ETA`);
            0: the ancestral sampler.
        t_on, t_off, alpha_on: the ``loop`` strategy's plateau.
        temperature, top_p: applied to every token draw.
    """

    @classmethod
    def context_defaults(cls, context: SamplingContext) -> dict[str, Any]:
        return {"schedule": context.schedule}  # the grid's alphas are the process's schedule

    def __init__(self, vocab: VocabSpec, schedule: Schedule | None = None, num_steps: int = 128, *,
                 strategy: str = "cap", eta: float | None = None, t_on: float = 0.55, t_off: float = 0.05,
                 alpha_on: float = 0.9, temperature: float = 1.0, top_p: float = 1.0) -> None:
        super().__init__(vocab)
        if strategy not in STRATEGIES:
            raise ValueError(f"ReMDMSampler: strategy must be one of {STRATEGIES}, got {strategy!r}")
        eta = DEFAULT_ETA[strategy] if eta is None else float(eta)
        if int(num_steps) < 1:
            raise ValueError(f"ReMDMSampler: num_steps must be >= 1, got {num_steps}")
        if not 0.0 <= eta <= (math.inf if strategy == "conf" else 1.0) or not math.isfinite(eta):
            raise ValueError(f"ReMDMSampler: eta must be in [0, 1] ({strategy}), got {eta!r}")
        if not (0.0 < t_off < t_on < 1.0 and 0.0 < alpha_on < 1.0):
            raise ValueError(f"ReMDMSampler: need 0 < t_off < t_on < 1 and 0 < alpha_on < 1, "
                             f"got t_off={t_off}, t_on={t_on}, alpha_on={alpha_on}")
        self.schedule = schedule if schedule is not None else LogLinearSchedule()
        self.num_steps = int(num_steps)
        self.strategy, self.eta = strategy, eta
        self.t_on, self.t_off, self.alpha_on = float(t_on), float(t_off), float(alpha_on)
        self.temperature, self.top_p = temperature, top_p
        self._alpha = self.alphas()
        self._sigma = self._step_sigmas()
        # quiet[j]: no step j' <= j can remask (then a fully revealed row is final)
        self._quiet = torch.cumsum(self._sigma > 0, 0) == 0

    # ------------------------------------------------------------------ grid
    def _ramp(self, u: Tensor) -> Tensor:
        """:math:`A(u)`: the schedule's alpha normalised to fall from 1 at u=0 to 0 at u=1."""
        a1 = self.schedule.alpha(torch.tensor(1.0, dtype=torch.float64))
        return (self.schedule.alpha(u) - a1) / (1.0 - a1)

    def alphas(self) -> Tensor:
        """``[T + 1]``: :math:`\\alpha_j` of grid step ``j`` (``alpha[0] = 1``)."""
        t = torch.linspace(0.0, 1.0, self.num_steps + 1, dtype=torch.float64)
        if self.strategy != "loop":
            a = self.schedule.alpha(t).clone()
        else:
            on, off, a_on = self.t_on, self.t_off, self.alpha_on
            high = a_on * self._ramp(((t - on) / (1.0 - on)).clamp(0.0, 1.0))
            low = 1.0 - (1.0 - a_on) * (1.0 - self._ramp((t / off).clamp(0.0, 1.0)))
            a = torch.where(t > on, high, torch.where(t <= off, low, torch.full_like(t, a_on)))
        a[0] = 1.0
        return a

    def sigma_max(self, j: int) -> float:
        a_t, a_s = float(self._alpha[j]), float(self._alpha[j - 1])
        return 1.0 if a_t <= 0.0 else min(1.0, (1.0 - a_s) / a_t)

    def _step_sigmas(self) -> Tensor:
        """``[T + 1]``: the remasking probability of step ``j`` (``conf``: its total scale
        :math:`\\eta\\sigma_{\\max}`), 0 at ``j = 0``."""
        out = torch.zeros(self.num_steps + 1, dtype=torch.float64)
        for j in range(1, self.num_steps + 1):
            smax = self.sigma_max(j)
            if self.strategy == "cap":
                out[j] = min(self.eta, smax)
            elif self.strategy in ("rescale", "conf"):
                out[j] = self.eta * smax
            elif self.t_off < j / self.num_steps <= self.t_on:  # loop plateau
                out[j] = min(self.eta, smax)
        return out

    # ------------------------------------------------------------------ loop
    def init_state(self, state: SamplerState) -> ReMDMState:
        free = state.valid & ~state.fixed
        psi = torch.full(state.x.shape, math.nan, dtype=torch.float64, device=state.x.device)
        out = ReMDMState.extend(state, free=free, j=self.num_steps, psi=psi)
        out.done = not bool(free.any())
        return out

    def step(self, state: ReMDMState, denoiser: Denoiser) -> ReMDMState:
        j, x, dev = state.j, state.x, state.x.device
        a_t, a_s = float(self._alpha[j]), float(self._alpha[j - 1])
        sigma = float(self._sigma[j])
        masked = (x == self.vocab.mask_id) & state.free
        shown = state.free & ~masked
        if self.strategy == "conf":
            w = torch.softmax((-state.psi).masked_fill(~shown, -math.inf), dim=1).nan_to_num(0.0)
            p_remask, sigma_masked = (sigma * w).clamp(max=1.0), 0.0
        else:
            p_remask, sigma_masked = torch.full(x.shape, sigma, dtype=torch.float64, device=dev), sigma
        p_reveal = 1.0 if a_t >= 1.0 else (a_s - (1.0 - sigma_masked) * a_t) / (1.0 - a_t)
        u = uniform(tuple(x.shape), generator=state.generator, device=dev, dtype=torch.float64)
        reveal = masked & (u < p_reveal)
        remask = shown & (u < p_remask)
        rows = reveal.any(1).nonzero(as_tuple=True)[0]
        if len(rows):
            sub = reveal[rows]
            rate = torch.full((len(rows),), 1.0 - a_t, dtype=torch.float64, device=dev)
            logp = denoiser(x[rows], rate, state.valid[rows], sub)
            values = sample_categorical(logp, generator=state.generator, temperature=self.temperature,
                                        top_p=self.top_p)
            x_rows, psi_rows = x[rows], state.psi[rows]
            x_rows[sub] = values
            psi_rows[sub] = logp.double().gather(1, values.unsqueeze(1)).squeeze(1).exp()
            x[rows], state.psi[rows] = x_rows, psi_rows
            state.nfe[rows] += 1
            state.calls += 1
        x[remask] = self.vocab.mask_id
        state.psi[remask] = math.nan
        state.remasked.append(remask.sum(1).cpu())
        state.step += 1
        state.j = j - 1
        left = ((x == self.vocab.mask_id) & state.free).any()
        state.done = state.j == 0 or (not bool(left) and bool(self._quiet[state.j]))
        return state

    def trace(self, state: ReMDMState) -> dict:
        """``remasked [steps, B]``: tokens each row remasked at each step."""
        return {"remasked": torch.stack(state.remasked) if state.remasked else None}
