r"""Score-ordered unmasking, and Entropy-Adaptive Gibbs Sampling (Diffusion-EAGS).

**Reveal phase.** At each of ``T`` steps the denoiser predicts every masked position
given everything visible, each masked position gets a score, and the ``k_s``
best-scoring positions of each row are drawn, each independently from its own
conditional given the visible tokens. Their joint draw is the product of these per-site
conditionals (the usual parallel-decoding approximation), not the block conditional of
the joint; it is exact when ``k_s = 1`` (then any score order samples the joint exactly,
one site at a time). The reveal counts follow the process's schedule, normalised so that
nothing is revealed at ``s = 0`` although :math:`\alpha(1) = \varepsilon > 0`: after step
``s`` a row with ``n`` free positions has

.. math:: R_s = \Big\lceil n\,\frac{\alpha(1 - s/T) - \alpha(1)}{1 - \alpha(1)} \Big\rceil,
          \qquad R_T = n,\qquad k_s = R_s - R_{s-1}

revealed (linear for the log-linear schedule), so the states the sampler visits have the
masking rates the model was trained on.

``order`` (the score):

- ``entropy_high`` — EAGS: the most uncertain positions first (Koh et al. 2025).
- ``entropy_low`` — the ablation: least uncertain first.
- ``confidence`` — highest max-probability first (MaskGIT / Mask-Predict).
- ``margin`` — largest gap between the top two probabilities first.
- ``random`` — uniformly random order (with fixed counts: MDLM's reveal law).
- ``left_to_right`` — positional order.

Entropy is Shannon by default, or Rényi of order ``renyi_alpha``.

**Revisiting** (``refine_sweeps > 0``) resamples filled positions after the last step,
always ranked by *uncertainty* (``refine_score``, whatever the reveal ``order``), in one of
two modes (:mod:`seqdiff.samplers.refine` has the kernels and the derivation):

- ``refine_mode="mh"`` (default): entropy-adaptive Metropolis-within-Gibbs. Site ``i`` is
  proposed with probability :math:`q_i(x) \propto e^{u_i(x)/\lambda}` (uncertain sites
  more often), redrawn from its leave-one-out conditional, and the move is accepted with
  :math:`\min(1, q_i(x')/q_i(x))`. When the conditionals are those of one joint, the
  kernel leaves that joint invariant (tested exactly on an enumerable toy).
- ``refine_mode="remask"``: the paper-style heuristic. The ``refine_fraction`` most
  uncertain filled sites are re-masked and redrawn at once from their leave-one-out
  conditionals on the same state. It does **not** leave the joint invariant (the toy
  test measures the drift).

The sampler records, per step, the sum of the masked positions' entropies (free), with
``refine_mode="mh"`` each row's acceptance rate per sweep, and, with
``track_energy="pll"``, the D-cMRF energy of the filled target tokens: the negative
pseudo-log-likelihood :math:`E(y|c) = -\sum_i \log p_\theta(y_i \mid y_{-i}, c)` over
filled free sites. Energy costs one batched leave-one-out pass per step; it is for
analysis and is not counted in ``nfe``/``calls``. (The "raw logit" energy variant needs
unnormalised logits, which the denoiser interface does not expose; it is not offered.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from seqdiff.samplers.base import Denoiser, Sampler, SamplerState, SamplingContext, sample_categorical
from seqdiff.samplers.refine import REFINE_MODES, REFINE_SCORES, masked_passes, mh_sweep, remask_sweep
from seqdiff.schedules import LogLinearSchedule, Schedule
from seqdiff.utils.random import uniform
from seqdiff.vocab import VocabSpec

ORDERS = ("entropy_high", "entropy_low", "confidence", "margin", "random", "left_to_right")
# The refinement's uncertainty score when ``refine_score`` is not given: the reveal order's
# own measure, read as uncertainty (never "most confident first").
REFINE_SCORE_OF_ORDER = {"entropy_high": "entropy", "entropy_low": "entropy", "confidence": "confidence",
                         "margin": "margin", "random": "uniform", "left_to_right": "entropy"}


def entropy(logp: Tensor, kind: str = "shannon", alpha: float = 2.0) -> Tensor:
    """Entropy (nats) of each row of ``logp [N, V]``: Shannon, or Rényi of order ``alpha``."""
    p = logp.exp()
    if kind == "shannon":
        return -(p * logp.masked_fill(p == 0, 0.0)).sum(-1)
    if kind == "renyi":
        if alpha == 1.0:
            return entropy(logp, "shannon")
        return torch.logsumexp(alpha * logp, dim=-1) / (1.0 - alpha)
    raise ValueError(f"entropy: kind must be shannon or renyi, got {kind!r}")


@dataclass(kw_only=True)
class OrderedState(SamplerState):
    """``free``: positions to generate; ``counts [T, B]``: tokens each row reveals per step;
    ``sweeps_left``: refinement sweeps still to run; per-step traces ``entropy_sum``,
    ``refine_accept``, ``energy`` (lists of ``[B]`` tensors); ``refine_group`` /
    ``refine_u``: the ``mh`` refinement's fixed groups and cached scores (set by its
    first sweep)."""

    free: Tensor
    counts: Tensor
    sweeps_left: int
    entropy_sum: list[Tensor] = field(default_factory=list)
    refine_accept: list[Tensor] = field(default_factory=list)
    energy: list[Tensor] = field(default_factory=list)
    refine_group: Tensor | None = None
    refine_u: Tensor | None = None


class OrderedSampler(Sampler):
    r"""Reveal ``k_s`` positions per step in score order (the baselines: confidence, margin,
    random, left-to-right, lowest entropy first); :class:`EAGSSampler` is
    ``order="entropy_high"``.

    Args:
        vocab, schedule: the model's vocabulary and the process's schedule.
        num_steps: ``T`` (EAGS: 5 in the paper's setting).
        order: see :data:`ORDERS`.
        entropy_kind, renyi_alpha: the uncertainty measure for the entropy orders.
        temperature, top_p: applied to every token draw.
        refine_sweeps: revisiting sweeps after the last step (0: none).
        refine_mode: ``"mh"`` (exact) or ``"remask"`` (heuristic); see :mod:`seqdiff.samplers.refine`.
        refine_score: the uncertainty that ranks or selects sites: ``entropy``, ``confidence``
            (least confident first), ``margin`` or ``uniform``; ``None``: from ``order``
            (:data:`REFINE_SCORE_OF_ORDER`).
        refine_temperature: ``mh`` only: :math:`\lambda` of :math:`q_i \propto e^{u_i/\lambda}`
            (nats; ``inf``: uniform random scan).
        refine_groups: ``mh`` only: score with ``g`` fixed groups instead of exact
            leave-one-out (``None``): re-scoring a proposed state costs ``g - 1`` passes, not ``n - 1``.
        refine_fraction: ``remask`` only: share of filled sites resampled per sweep.
        track_energy: ``None`` or ``"pll"`` (see module docstring).
    """

    loo_chunk = 256  # one-site-masked copies per denoiser call (memory, not results)

    @classmethod
    def context_defaults(cls, context: SamplingContext) -> dict[str, Any]:
        return {"schedule": context.schedule}  # reveal counts follow the process's schedule

    def __init__(
        self,
        vocab: VocabSpec,
        schedule: Schedule | None = None,
        num_steps: int = 5,
        *,
        order: str = "entropy_high",
        entropy_kind: str = "shannon",
        renyi_alpha: float = 2.0,
        temperature: float = 1.0,
        top_p: float = 1.0,
        refine_sweeps: int = 0,
        refine_mode: str = "mh",
        refine_score: str | None = None,
        refine_temperature: float = 1.0,
        refine_groups: int | None = None,
        refine_fraction: float = 0.1,
        track_energy: str | None = None,
    ) -> None:
        super().__init__(vocab)
        if order not in ORDERS:
            raise ValueError(f"OrderedSampler: order must be one of {ORDERS}, got {order!r}")
        if num_steps < 1 or refine_sweeps < 0 or not 0.0 < refine_fraction <= 1.0:
            raise ValueError("OrderedSampler: need num_steps >= 1, refine_sweeps >= 0, 0 < refine_fraction <= 1")
        if refine_mode not in REFINE_MODES:
            raise ValueError(f"OrderedSampler: refine_mode must be one of {REFINE_MODES}, got {refine_mode!r}")
        if refine_score is not None and refine_score not in REFINE_SCORES:
            raise ValueError(f"OrderedSampler: refine_score must be null or one of {REFINE_SCORES}, got {refine_score!r}")
        if not float(refine_temperature) > 0.0:
            raise ValueError(f"OrderedSampler: refine_temperature must be > 0 (.inf: uniform), got {refine_temperature!r}")
        if refine_groups is not None and int(refine_groups) < 1:
            raise ValueError(f"OrderedSampler: refine_groups must be null (exact leave-one-out) or >= 1, "
                             f"got {refine_groups!r}")
        if track_energy not in (None, "pll"):
            raise ValueError(f"OrderedSampler: track_energy must be null or pll, got {track_energy!r}")
        entropy(torch.zeros(1, 2), entropy_kind, renyi_alpha)  # validates the kind
        self.schedule = schedule if schedule is not None else LogLinearSchedule()
        self.num_steps = int(num_steps)
        self.order = order
        self.entropy_kind = entropy_kind
        self.renyi_alpha = renyi_alpha
        self.temperature = temperature
        self.top_p = top_p
        self.refine_sweeps = int(refine_sweeps)
        self.refine_mode = refine_mode
        self.refine_score = refine_score if refine_score is not None else REFINE_SCORE_OF_ORDER[order]
        self.refine_temperature = float(refine_temperature)
        self.refine_groups = None if refine_groups is None else int(refine_groups)
        self.refine_fraction = float(refine_fraction)
        self.track_energy = track_energy

    # ------------------------------------------------------------------ schedule
    def reveal_counts(self, n: Tensor) -> Tensor:
        """``[T, B]`` tokens to reveal at each step for rows with ``n`` free positions."""
        T = self.num_steps
        s = torch.arange(T + 1, dtype=torch.float64)
        frac = self.schedule.alpha(1.0 - s / T)
        frac = (frac - frac[0]) / (1.0 - frac[0])  # alpha(1) = eps: start from nothing revealed
        revealed = torch.ceil(frac.unsqueeze(1) * n.double().cpu().unsqueeze(0) - 1e-9).long()
        revealed[-1] = n.cpu()
        return (revealed[1:] - revealed[:-1]).clamp(min=0)

    def rate(self, step: int) -> Tensor:
        return 1.0 - self.schedule.alpha(torch.tensor(1.0 - step / self.num_steps, dtype=torch.float64))

    # ------------------------------------------------------------------ scoring
    def scores(self, logp: Tensor, cols: Tensor, generator) -> Tensor:
        """Higher = revealed earlier. ``cols``: the position of each scored row."""
        if self.order in ("entropy_high", "entropy_low"):
            h = entropy(logp.double(), self.entropy_kind, self.renyi_alpha)
            return h if self.order == "entropy_high" else -h
        if self.order == "confidence":
            return logp.max(-1).values.double()
        if self.order == "margin":
            top2 = logp.double().exp().topk(2, dim=-1).values
            return top2[:, 0] - top2[:, 1]
        if self.order == "random":
            return uniform((logp.shape[0],), generator=generator, device=logp.device, dtype=torch.float64)
        return -cols.double()  # left_to_right

    def uncertainty(self, logp: Tensor, score: str) -> Tensor:
        r"""Uncertainty of each row of ``logp [N, V]`` (higher = less certain), float64:
        entropy; ``confidence``: :math:`-\log\max_v p(v)` (min-entropy, nats); ``margin``:
        minus the top-two gap; ``uniform``: 0."""
        lp = logp.double()
        if score == "entropy":
            return entropy(lp, self.entropy_kind, self.renyi_alpha)
        if score == "confidence":
            return -lp.max(-1).values
        if score == "margin":
            top2 = lp.exp().topk(2, dim=-1).values
            return top2[:, 1] - top2[:, 0]
        return torch.zeros(lp.shape[0], dtype=torch.float64, device=lp.device)

    def _choose(self, positions: Tensor, score: Tensor, k: Tensor) -> Tensor:
        """The ``k[b]`` best-scoring of row ``b``'s ``positions`` (ties: leftmost first)."""
        B, L = positions.shape
        full = torch.full((B, L), -math.inf, dtype=torch.float64, device=positions.device)
        full[positions] = score
        # stable tie-break by position: subtract a tiny ramp
        full = full - torch.arange(L, device=positions.device, dtype=torch.float64) * 1e-12
        order = full.argsort(dim=1, descending=True)
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(L, device=positions.device).expand(B, L))
        return positions & (rank < k.to(positions.device).unsqueeze(1))

    # ------------------------------------------------------------------ loop
    def init_state(self, state: SamplerState) -> OrderedState:
        free = state.valid & ~state.fixed
        out = OrderedState.extend(state, free=free, counts=self.reveal_counts(free.sum(1)),
                                  sweeps_left=self.refine_sweeps)
        out.done = not bool(free.any())
        return out

    def step(self, state: OrderedState, denoiser: Denoiser) -> OrderedState:
        if state.step < self.num_steps:
            self._reveal_step(state, denoiser)
        else:
            self._refine_sweep(state, denoiser)
        if self.track_energy:
            state.energy.append(self.energy(state, denoiser))
        state.step += 1
        state.done = state.step >= self.num_steps and state.sweeps_left == 0
        return state

    def _reveal_step(self, state: OrderedState, denoiser: Denoiser) -> None:
        masked = (state.x == self.vocab.mask_id) & state.free
        k = state.counts[state.step].to(state.x.device)
        # Rows with nothing to reveal at this step (more steps than free positions) are not
        # run: their state does not change until their next reveal step, whose entropy sum
        # is therefore also theirs here (filled in below, NaN until then).
        has_mask = masked.any(1)
        rows = (has_mask & (k > 0)).nonzero(as_tuple=True)[0]
        esum = torch.zeros(state.x.shape[0], dtype=torch.float64)
        esum[(has_mask & (k == 0)).cpu()] = math.nan
        trace = state.entropy_sum
        trace.append(esum)
        if len(rows) == 0:
            return
        sub = masked[rows]
        logp = denoiser(state.x[rows], self.rate(state.step).expand(len(rows)).to(state.x.device), state.valid[rows], sub)
        h = entropy(logp.double(), self.entropy_kind, self.renyi_alpha)
        r = rows.cpu()
        esum[r] = torch.zeros(len(rows), dtype=torch.float64, device=state.x.device).index_add(
            0, sub.nonzero(as_tuple=True)[0], h
        ).cpu()
        for j in range(len(trace) - 2, -1, -1):  # back-fill the skipped steps of these rows
            gap = r[torch.isnan(trace[j][r])]
            if len(gap) == 0:
                break
            trace[j][gap] = esum[gap]
        cols = sub.nonzero(as_tuple=True)[1]
        score = h if self.order == "entropy_high" else (-h if self.order == "entropy_low" else self.scores(logp, cols, state.generator))
        chosen = self._choose(sub, score, k[rows])
        pick = chosen[sub]  # which of the scored positions are revealed
        values = sample_categorical(logp[pick], generator=state.generator, temperature=self.temperature, top_p=self.top_p)
        x_rows = state.x[rows]
        x_rows[chosen] = values
        state.x[rows] = x_rows
        state.nfe[rows] += 1
        state.calls += 1

    def loo(self, state: OrderedState, denoiser: Denoiser, sites: Tensor, *, count: bool = False) -> tuple[Tensor, Tensor]:
        """Leave-one-out log-probabilities ``[N, V]`` at the ``sites`` (row-major): each
        site predicted with only itself masked. Returns ``(logp, row index of each)``;
        ``count`` adds the passes to ``state.nfe`` / ``state.calls``."""
        b_idx, l_idx = sites.nonzero(as_tuple=True)
        one = torch.zeros(len(b_idx), sites.shape[1], dtype=torch.bool, device=sites.device)
        one[torch.arange(len(b_idx), device=sites.device), l_idx] = True
        logp, calls = masked_passes(denoiser, state.x[b_idx], state.valid[b_idx], one, self.vocab.mask_id, self.loo_chunk)
        if count:
            state.nfe += sites.sum(1)
            state.calls += calls
        if len(b_idx) == 0:
            return torch.zeros(0, self.vocab.size, device=state.x.device), b_idx
        return logp, b_idx

    def _refine_sweep(self, state: OrderedState, denoiser: Denoiser) -> None:
        (mh_sweep if self.refine_mode == "mh" else remask_sweep)(self, state, denoiser)
        state.sweeps_left -= 1

    @torch.no_grad()
    def energy(self, state: OrderedState, denoiser: Denoiser) -> Tensor:
        """D-cMRF energy of each row's filled free tokens (see module docstring)."""
        filled = state.free & (state.x != self.vocab.mask_id)
        logp, rows = self.loo(state, denoiser, filled)
        tokens = state.x[filled]
        terms = -logp.gather(1, tokens.unsqueeze(1)).squeeze(1).double()
        out = torch.zeros(state.x.shape[0], dtype=torch.float64, device=state.x.device)
        return out.index_add(0, rows, terms).cpu()

    def trace(self, state: OrderedState) -> dict:
        """Per-step ``entropy_sum`` (masked positions, before each reveal step), ``energy``
        (after each step, when tracked), each ``[steps, B]``, and with ``refine_mode="mh"``
        ``refine_accept`` ``[sweeps, B]``: each row's MH acceptance rate per sweep."""
        out = {"entropy_sum": torch.stack(state.entropy_sum) if state.entropy_sum else None}
        if state.refine_accept:
            out["refine_accept"] = torch.stack(state.refine_accept)
        if state.energy:
            out["energy"] = torch.stack(state.energy)
        return out


class EAGSSampler(OrderedSampler):
    r"""Entropy-Adaptive Gibbs Sampling (Diffusion-EAGS, Koh et al. 2025): each of the
    ``num_steps`` steps reveals the highest-entropy masked positions (``order="entropy_high"``),
    optionally followed by revisiting sweeps (``refine_sweeps``, ``refine_mode``); the
    module docstring has the reveal law and the exact ``mh`` kernel. The options are
    :class:`OrderedSampler`'s, whose defaults are the paper's: 5 steps, highest entropy first.
    (``order`` is kept as an option so a config can ablate the order of the same sampler;
    the ablations proper are :class:`OrderedSampler`'s configs.)
    """
