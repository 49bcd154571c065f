r"""Ancestral sampling of the masked process (MDLM's "ddpm" sampler), with exact caching.

On the grid :math:`t_j=j/T`, a token still masked at :math:`t_j` is revealed at
:math:`t_{j-1}` with probability :math:`(\alpha_{j-1}-\alpha_j)/(1-\alpha_j)` and, if so,
drawn from :math:`p_\theta(x_0^i\mid x_{t_j})`. Which tokens are revealed when does not
depend on the model, so the reveal step of every token can be drawn up front: token
:math:`i` is revealed at step :math:`j` with probability
:math:`(\alpha_{j-1}-\alpha_j)/(1-\alpha_T)`.

``cache=True`` does exactly that (a *first-hitting* sampler): it jumps from one reveal
event to the next and runs the backbone only for the sequences that have an event, so
each sequence costs one backbone evaluation per distinct reveal step, the ideal that
MDLM's cache (``torch.allclose`` on the whole batch) approaches. The samples have the
same distribution as ``cache=False``, which evaluates the backbone at all :math:`T`
steps like MDLM's uncached sampler. It is exact for time-conditioned models too: the
model is called at each event with that event's noise level.
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqdiff.utils.rng import uniform
from seqdiff.samplers.base import Denoiser, Sampler, SamplerState, sample_categorical
from seqdiff.schedules import LogLinearSchedule, Schedule
from seqdiff.vocab import VocabSpec


class AncestralSampler(Sampler):
    """MDLM ancestral sampler.

    Args:
        vocab: vocabulary of the model.
        schedule: the process's schedule (its :math:`\\alpha` defines the reveal law).
        num_steps: :math:`T`, the number of grid steps.
        cache: first-hitting evaluation (one backbone call per reveal event).
        greedy_final: every token revealed at the last grid step (:math:`t_1 = 1/T \\to 0`)
            takes the argmax of :math:`p_\\theta(x_0 \\mid x_{t_1})` instead of a draw. A token is
            revealed there with probability :math:`(\\alpha_0-\\alpha_1)/(1-\\alpha_T)`, exactly
            :math:`1/T` under the log-linear schedule: about ``L/T`` tokens per sequence (all of
            them when ``T = 1``). This is *not* MDLM's ``noise_removal``, which argmaxes only the
            tokens still masked at :math:`t = 10^{-5}` (an expected :math:`10^{-5} L`); without
            it our last step draws the remaining tokens, the exact reverse process. Lowers
            sample entropy; off by default.
        temperature, top_p: applied to every draw.
    """

    def __init__(
        self,
        vocab: VocabSpec,
        schedule: Schedule | None = None,
        num_steps: int = 128,
        *,
        cache: bool = True,
        greedy_final: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
    ) -> None:
        super().__init__(vocab)
        if num_steps < 1:
            raise ValueError(f"AncestralSampler: num_steps must be >= 1, got {num_steps}")
        self.schedule = schedule if schedule is not None else LogLinearSchedule()
        self.num_steps = int(num_steps)
        self.cache = cache
        self.greedy_final = greedy_final
        self.temperature = temperature
        self.top_p = top_p
        grid = torch.linspace(0.0, 1.0, self.num_steps + 1, dtype=torch.float64)
        self._alpha = self.schedule.alpha(grid)  # alpha_j, decreasing in j
        self._alpha[0] = 1.0

    # ------------------------------------------------------------------ helpers
    def rate(self, j: Tensor | int) -> Tensor:
        """Masking rate :math:`1-\\alpha(t_j)` at grid step ``j``."""
        return 1.0 - self._alpha[j]

    def reveal_steps(self, shape: tuple[int, int], generator: torch.Generator | None, device) -> Tensor:
        """Draw each token's reveal step in ``1..T`` by inverting the CDF on the grid."""
        a_T = self._alpha[-1]
        a = a_T + (1.0 - a_T) * uniform(shape, generator=generator, dtype=torch.float64)
        ascending = self._alpha.flip(0)  # alpha_T .. alpha_0
        m = torch.searchsorted(ascending, a.reshape(-1), side="left").reshape(shape)
        return (self.num_steps - m + 1).clamp(1, self.num_steps).to(device)

    def _draw(self, logp: Tensor, final: bool, generator) -> Tensor:
        temperature = 0.0 if (final and self.greedy_final) else self.temperature
        return sample_categorical(logp, generator=generator, temperature=temperature, top_p=self.top_p)

    # ------------------------------------------------------------------ loop
    def init_state(self, state: SamplerState) -> None:
        free = state.valid & ~state.fixed
        state.extra["free"] = free
        state.extra["j"] = self.num_steps
        if self.cache:
            steps = self.reveal_steps(tuple(state.x.shape), state.generator, state.x.device)
            state.extra["reveal"] = steps.masked_fill(~free, 0)
        state.done = not bool(free.any())

    def step(self, state: SamplerState, denoiser: Denoiser) -> SamplerState:
        return self._step_cached(state, denoiser) if self.cache else self._step_uncached(state, denoiser)

    def _step_cached(self, state: SamplerState, denoiser: Denoiser) -> SamplerState:
        reveal: Tensor = state.extra["reveal"]
        j = int(reveal.max())
        positions = reveal == j
        rows = positions.any(1).nonzero(as_tuple=True)[0]
        sub_pos = positions[rows]
        rate = self.rate(j).to(state.x.device).expand(len(rows))
        logp = denoiser(state.x[rows], rate, state.valid[rows], sub_pos)
        values = self._draw(logp, j == 1, state.generator)
        x_rows = state.x[rows]
        x_rows[sub_pos] = values
        state.x[rows] = x_rows
        reveal[positions] = 0
        state.nfe[rows] += 1
        state.calls += 1
        state.step += 1
        state.extra["j"] = j - 1
        state.done = not bool(reveal.any())
        return state

    def _step_uncached(self, state: SamplerState, denoiser: Denoiser) -> SamplerState:
        j: int = state.extra["j"]
        masked = (state.x == self.vocab.mask_id) & state.extra["free"]
        p = float((self._alpha[j - 1] - self._alpha[j]) / (1.0 - self._alpha[j]))
        u = uniform(tuple(state.x.shape), generator=state.generator, device=state.x.device, dtype=torch.float64)
        positions = masked & (u < p)
        rate = self.rate(j).to(state.x.device).expand(state.x.shape[0])
        logp = denoiser(state.x, rate, state.valid, positions)
        state.x[positions] = self._draw(logp, j == 1, state.generator)
        state.nfe += 1
        state.calls += 1
        state.step += 1
        state.extra["j"] = j - 1
        state.done = j - 1 == 0
        return state
