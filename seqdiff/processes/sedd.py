r"""Score-entropy discrete diffusion (SEDD, Lou et al. 2024) on the absorbing graph.

Notation: :math:`\sigma(t)` is the total noise, :math:`\alpha(t)=e^{-\sigma(t)}` the
probability that a token is still clean, :math:`m(t)=1-\alpha(t)` the masking rate and
:math:`w(t)=\sigma'(t)/(e^{\sigma(t)}-1)=-\alpha'/(1-\alpha)` MDLM's weight. Schedules:
SEDD's log-linear :math:`\sigma=-\log(1-(1-\varepsilon)t)`
(:class:`~seqdiff.schedules.LogLinearSchedule`) and geometric
:math:`\sigma=\sigma_{min}^{1-t}\sigma_{max}^t` (:class:`~seqdiff.schedules.GeometricSchedule`).

**Parameterisation** (:meth:`ScoreEntropyDiffusion.log_scores`). At a masked position the
backbone's logits :math:`\ell` are read as log concrete scores, the ratios
:math:`s_y\approx q_t(x^{i\leftarrow y})/q_t(x)=p(x_0^i=y\mid x_t)/(e^{\sigma}-1)`:

.. math:: \log s_y = \ell_y - \log(e^{\sigma}-1) - \log n \qquad (y \text{ generable, } n \text{ of them}),

SEDD's ``scale_by_sigma`` (MDLM's ``_sedd_parameterization``) without its mask entry:
[MASK] is never a move target, forbidden ids get :math:`s=0`, and a revealed position
has no moves at all (the absorbing reverse never changes a revealed token), so nothing
at unmasked positions is computed. We use the exact decomposition

.. math:: s_y = r\,e^{\lambda}\,p_\theta(y),\quad r=\frac{1}{e^{\sigma}-1},\quad
          p_\theta=\operatorname{softmax}(\ell),\quad \lambda=\operatorname{logsumexp}\ell-\log n.

:math:`p_\theta` is MDLM's SUBS distribution of the same logits; :math:`\lambda` (the log
*mass*) is the one extra degree of freedom of a score model: the true score has
:math:`\sum_y s_y=r`, i.e. :math:`\lambda=0`, and the :math:`-\log n` offset starts a
zero-initialised head there. :meth:`denoiser` exposes :math:`p_\theta` through the usual
contract (every sampler works) and :math:`(p_\theta,\lambda)` through ``score_parts``
(SEDD's samplers).

**Loss** (SEDD's ``score_entropy`` for absorb, per masked token, times :math:`\sigma'`):

.. math:: \sigma'\Big[\sum_y s_y - r\log s_{x_0} + r(\log r-1)\Big]
          = w(t)\big[-\log p_\theta(x_0\mid x_t) + e^{\lambda}-1-\lambda\big]

(:meth:`token_terms` computes the right side: no :math:`1/(e^\sigma-1)` is ever formed).
It is MDLM's integrand plus :math:`w(t)(e^\lambda-1-\lambda)\ge 0`, zero iff the mass is right.

**The bound.** The generative model: all-[MASK] at :math:`t=1`; a reverse-time chain in
which each masked position moves to :math:`y` at rate :math:`\sigma'(t)s_y=w(t)e^\lambda
p_\theta(y)`; at ``t_min`` the positions still masked are revealed independently from
:math:`p_\theta(\cdot\mid x_{t_{min}})`. SEDD's samplers (``seqdiff.samplers.sedd``)
discretise it; ``num_steps=T`` gives the bound of the T-step sampler itself. With
:math:`\alpha(1)>0` the forward marginal :math:`q(x_1\mid x_0)` is not all-[MASK], so
:math:`\mathrm{KL}(q(x_1|x_0)\,\|\,\delta_{\text{all-mask}})=\infty`: the prior term of
SEDD's ELBO is infinite, not small. We bound with the forward process *conditioned on
being all-[MASK] at t = 1* (:math:`Q`): a token's masking time has CDF
:math:`\tilde m(t)=m(t)/m(1)`, its reverse hazard :math:`\tilde m'/\tilde m=m'/m=w(t)` is
unchanged, the prior term is exactly 0, and

.. math::
    -\log p_\theta(x_0) \le \int_{t_{min}}^1 \mathbb{E}_{Q_t}\sum_{i\ \mathrm{masked}}
    w(t)\big[-\log p_\theta(x_0^i|x_t)+e^{\lambda_i}-1-\lambda_i\big]dt
    + \mathbb{E}_{Q_{t_{min}}}\sum_{i\ \mathrm{masked}}-\log p_\theta(x_0^i|x_{t_{min}}),

with :math:`x_t` masked independently with probability :math:`\tilde m(t)` and the network
queried at the noise level :math:`\sigma(t)` (masking rate :math:`m(t)`). The path term
is the KL between the two chains' jump rates: per masked token
:math:`\sum_y R^\theta_y - R^Q + R^Q\log(R^Q/R^\theta_{x_0})` with :math:`R^Q=w(t)` to
:math:`x_0`, which is the line above. The last term is the final reveal (zero for the
log-linear schedule with ``t_min = 0``, where :math:`\tilde m(0)=0`). The backbone sees
``t`` = the masking rate :math:`m=1-e^{-\sigma}` when ``time_conditioning`` is on.

Estimators of the integral (both stratified over the global batch like
:meth:`MaskedDiffusion.draw`, both unbiased):

``"count"`` (default): substituting :math:`\tilde m` turns :math:`w\,dt` into
    :math:`d\tilde m/\tilde m`; draw the number of masked tokens :math:`k` uniform on
    :math:`1..n`, :math:`\tilde m\sim\mathrm{Beta}(k,n-k+1)` as the k-th order statistic,
    weight :math:`n/k`, zero where :math:`\tilde m<\tilde m(t_{min})`. Finite variance.
``"time"``: :math:`t=t_{min}+(1-t_{min})u`, weight :math:`(1-t_{min})w(t)` (heavy tail at
    small :math:`t`: the variance is unbounded for the log-linear schedule).

``num_steps=T`` (estimator ``"time"`` only): the bound of the T-step chain on
:math:`t_j=t_{min}+(1-t_{min})j/T`, where a masked position is revealed with probability
:math:`a_j=\min(1,c_je^{\lambda})` and then drawn from :math:`p_\theta` (see
:class:`StepLaw`), against :math:`Q`'s :math:`\rho_j=(\alpha_{j-1}-\alpha_j)/(1-\alpha_j)`:

.. math:: \sum_{j=1}^T\mathbb{E}_{Q_{t_j}}\sum_{i\ \mathrm{masked}}\Big[\rho_j\log\frac{\rho_j}{a_j\,p_\theta(x_0^i)}
          +(1-\rho_j)\log\frac{1-\rho_j}{1-a_j}\Big] + \text{(final reveal at } t_0).

It is :math:`+\infty` where a step reveals surely (:math:`a_j=1`) but :math:`Q` need
not: such a chain cannot produce some of its paths, and the number says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from seqdiff.backbones.base import Backbone, unwrap
from seqdiff.processes.base import LossOutput, Process
from seqdiff.processes.masked import _valid_or_all
from seqdiff.processes.time_sampling import order_statistic_mask, stratified_uniform, uniform
from seqdiff.schedules import PREDICTORS, LogLinearSchedule, Schedule, StepLaw  # noqa: F401 (re-exported)
from seqdiff.vocab import VocabSpec

ESTIMATORS = ("count", "time")
def log_odds_clean(rate: Tensor) -> Tensor:
    """:math:`\\log r=-\\log(e^{\\sigma}-1)=\\log((1-m)/m)` for a masking rate ``m``."""
    rate = rate.double()
    return torch.log1p(-rate) - torch.log(rate)


class ScoreEntropyDiffusion(Process):
    """SEDD with the absorbing graph: score-entropy loss, its bound, the score reading.

    Args:
        vocab: the vocabulary (mask id, ids never to generate).
        schedule: SEDD's log-linear (default, eps=1e-3) or geometric noise.
        num_steps: ``0`` for the continuous-time bound, ``T > 0`` for the bound of the
            T-step sampler with ``predictor``.
        time_conditioning: pass the masking rate to the backbone (on in SEDD).
        estimator: ``"count"`` or ``"time"`` (see module doc).
        t_min: the time of the final reveal (0: the whole interval).
        predictor: ``"analytic"`` or ``"euler"``: which T-step chain ``num_steps`` bounds.
        mass_conserving: score the network read with :math:`\\lambda:=0`: the bound
            without the :math:`e^\\lambda-1-\\lambda` term (never larger). Its chain is the
            ancestral sampler's (with ``num_steps=T``, ``predictor=analytic``: exactly the
            T-step ancestral sampler on the same grid); other samplers (EAGS, ...) read the
            same :math:`p_\\theta` but draw other laws, which no bound here covers.
    """

    kind = "sedd"
    estimators = ESTIMATORS

    def __init__(
        self,
        vocab: VocabSpec,
        schedule: Schedule | None = None,
        *,
        num_steps: int = 0,
        time_conditioning: bool = True,
        estimator: str = "count",
        t_min: float = 0.0,
        predictor: str = "analytic",
        mass_conserving: bool = False,
    ) -> None:
        if estimator not in ESTIMATORS:
            raise ValueError(f"ScoreEntropyDiffusion: estimator must be one of {ESTIMATORS}, got {estimator!r}")
        if num_steps < 0:
            raise ValueError(f"ScoreEntropyDiffusion: num_steps must be >= 0, got {num_steps}")
        if num_steps > 0 and estimator == "count":
            raise ValueError("ScoreEntropyDiffusion: the T-step bound (num_steps > 0) needs estimator=time")
        if predictor not in PREDICTORS:
            raise ValueError(f"ScoreEntropyDiffusion: predictor must be one of {PREDICTORS}, got {predictor!r}")
        if not 0.0 <= t_min < 1.0:
            raise ValueError(f"ScoreEntropyDiffusion: t_min must be in [0, 1), got {t_min}")
        self.vocab = vocab
        self.schedule = schedule if schedule is not None else LogLinearSchedule()
        self.num_steps = int(num_steps)
        self.time_conditioning = bool(time_conditioning)
        self.estimator = estimator
        self.t_min = float(t_min)
        self.predictor = predictor
        self.mass_conserving = bool(mass_conserving)
        self._log_n = math.log(vocab.num_generatable)
        one = torch.ones((), dtype=torch.float64)
        self._rate_1 = float(1.0 - self.schedule.alpha(one))  # m(1): Q's marginals are m(t) / m(1)
        self._qrate_0 = float((1.0 - self.schedule.alpha(one * self.t_min)) / self._rate_1)
        self.steps = StepLaw.build(self.schedule, self.num_steps, self.t_min, predictor) if self.num_steps else None
        # Both estimators are unbiased for the bound (the final reveal at t_min included), and
        # the training loss is that bound: a likelihood figure in every case.
        self.objective = "nelbo"
        self.loss_is_nelbo = True

    def eval_estimator(self, requested: str | None = None) -> str:
        """The estimator evaluation uses: ``requested``, by default ``count`` (``time`` for the
        T-step bound, the only one it has)."""
        if requested is None:
            return "time" if self.num_steps > 0 else "count"
        if requested not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS} or null, got {requested!r}")
        if requested == "count" and self.num_steps > 0:
            raise ValueError(f"the count estimator is for continuous time, but this process has num_steps={self.num_steps} "
                             "(the T-step bound); leave the estimator unset (null) or set process.num_steps=0")
        return requested

    def estimate_is_bound(self, estimator: str) -> bool:
        """Every estimator of this process estimates its bound (module docstring)."""
        return True

    def estimand(self, estimator: str) -> str:
        """One line saying what ``estimator``'s mean is (printed with every evaluation)."""
        if self.num_steps > 0:
            return f"SEDD bound of the {self.num_steps}-step {self.predictor} sampler's model"
        which = "ancestral sampler's model (mass-conserving reading)" if self.mass_conserving else "score model, all-[MASK] prior"
        return f"SEDD bound, continuous time ({which}; a bound on its NLL)"

    # ---------------------------------------------------------------- forward process Q
    def q_rate(self, t: Tensor) -> Tensor:
        """:math:`\\tilde m(t)=m(t)/m(1)`: masking probability under Q (all-[MASK] at t=1)."""
        return (1.0 - self.schedule.alpha(t.double())) / self._rate_1

    def model_time(self, rate: Tensor) -> Tensor | None:
        """What the backbone receives as ``t``: the masking rate, or None if not conditioned."""
        return rate.to(torch.float32) if self.time_conditioning else None

    # ---------------------------------------------------------------- parameterisation
    def _logits(self, model: Backbone, x_t: Tensor, rate: Tensor | None, valid, positions) -> Tensor:
        if self.time_conditioning and rate is None:
            raise ValueError("ScoreEntropyDiffusion: a time-conditioned model needs the masking rate")
        t_in = self.model_time(rate) if rate is not None else None
        logits = model(x_t, t_in, valid, output_mask=positions)
        return logits.float().masked_fill(self.vocab.forbidden_mask(logits.device), float("-inf"))

    def log_scores(self, model: Backbone, x_t: Tensor, rate: Tensor, valid=None, positions: Tensor | None = None) -> Tensor:
        """:math:`\\log s_y=\\ell_y-\\log(e^\\sigma-1)-\\log n` at masked positions (float64),
        ``-inf`` everywhere at revealed ones (no moves). ``[B, L, V]`` or ``[N, V]``."""
        logits = self._logits(model, x_t, rate, valid, positions).double()
        per_pos = log_odds_clean(rate.to(x_t.device)).unsqueeze(1).expand(x_t.shape)
        masked = x_t == self.vocab.mask_id
        if positions is not None:
            per_pos, masked = per_pos[positions], masked[positions]
        out = logits - self._log_n + per_pos.unsqueeze(-1)
        return out.masked_fill(~masked.unsqueeze(-1), float("-inf"))

    def log_probs(self, model: Backbone, x_t: Tensor, rate: Tensor | None, valid=None, positions=None) -> Tensor:
        """The normalised scores :math:`p_\\theta(x_0^i=y\\mid x_t)=s_y/\\sum_{y'}s_{y'}` at masked
        positions (the true score's are exactly the data's conditionals); a point mass at
        revealed ones. This is the denoiser contract, so every sampler can draw from it."""
        logp = torch.log_softmax(self._logits(model, x_t, rate, valid, positions), dim=-1)
        cur = x_t if positions is None else x_t[positions]
        keep = cur != self.vocab.mask_id
        point = torch.full_like(logp, float("-inf")).scatter_(-1, cur.unsqueeze(-1), 0.0)
        return torch.where(keep.unsqueeze(-1), point, logp)

    def score_parts(self, model: Backbone, x_t: Tensor, rate: Tensor, valid=None, positions=None
                    ) -> tuple[Tensor, Tensor]:
        """:math:`(\\log p_\\theta, \\lambda)` at the selected positions, which must be masked:
        the scores without :math:`r`, for samplers (see :class:`SEDDDenoiser`); with
        ``mass_conserving`` :math:`\\lambda=0`, so samplers draw the model that is scored."""
        logits = self._logits(model, x_t, rate, valid, positions)
        lse = torch.logsumexp(logits, dim=-1, keepdim=True)
        lam = lse.squeeze(-1) - self._log_n
        return logits - lse, torch.zeros_like(lam) if self.mass_conserving else lam

    def denoiser(self, model: Backbone) -> "SEDDDenoiser":
        return SEDDDenoiser(self, model)

    # ---------------------------------------------------------------- per-token terms
    def token_terms(self, model: Backbone, x0: Tensor, x_t: Tensor, valid: Tensor, rate: Tensor, masked: Tensor
                    ) -> tuple[Tensor, Tensor, Tensor]:
        """For the ``masked`` positions (row-major): ``(rows, ce, lam)`` with
        ``ce`` :math:`=-\\log p_\\theta(x_0^i|x_t)` and ``lam`` :math:`=\\lambda_i`."""
        logits = self._logits(model, x_t, rate, valid, masked)
        lse = torch.logsumexp(logits, dim=-1)
        ce = lse - logits.gather(-1, x0[masked].unsqueeze(-1)).squeeze(-1)
        rows = masked.nonzero(as_tuple=True)[0]
        lam = torch.zeros_like(lse) if self.mass_conserving else lse - self._log_n
        return rows, ce, lam

    def _sum_rows(self, rows: Tensor, values: Tensor, B: int) -> Tensor:
        return torch.zeros(B, dtype=values.dtype, device=values.device).index_add(0, rows, values)

    def score_entropy(self, model, x0, x_t, valid, rate) -> Tensor:
        """Per sequence :math:`\\sum_{masked}[-\\log p_\\theta+e^\\lambda-1-\\lambda]`, i.e. the
        DSE divided by :math:`r` (times :math:`w(t)` it is the integrand)."""
        masked = (x_t == self.vocab.mask_id) & valid
        rows, ce, lam = self.token_terms(model, x0, x_t, valid, rate, masked)
        return self._sum_rows(rows, ce + torch.expm1(lam) - lam, x0.shape[0])

    def loss_at(self, model: Backbone, x0: Tensor, x_t: Tensor, t: Tensor, valid: Tensor | None = None) -> Tensor:
        """The bound's integrand at time ``t`` for a given ``x_t`` (network queried at
        :math:`\\sigma(t)`): :math:`w(t)\\sum_{masked}[-\\log p_\\theta+e^\\lambda-1-\\lambda]`."""
        valid = _valid_or_all(x0, valid)
        t = t.to(x0.device, torch.float64)
        dse = self.score_entropy(model, x0, x_t, valid, 1.0 - self.schedule.alpha(t))
        return self.schedule.weight(t).to(dse.dtype) * dse

    def final_at(self, model: Backbone, x0: Tensor, x_t: Tensor, valid: Tensor | None = None) -> Tensor:
        """The final reveal at ``t_min``: :math:`\\sum_{masked}-\\log p_\\theta(x_0^i|x_{t_{min}})`."""
        valid = _valid_or_all(x0, valid)
        masked = (x_t == self.vocab.mask_id) & valid
        rate = (1.0 - self.schedule.alpha(torch.full((x0.shape[0],), self.t_min, dtype=torch.float64))).to(x0.device)
        rows, ce, _ = self.token_terms(model, x0, x_t, valid, rate, masked)
        return self._sum_rows(rows, ce.double(), x0.shape[0])

    def step_at(self, model: Backbone, x0: Tensor, x_t: Tensor, j: Tensor, valid: Tensor | None = None) -> Tensor:
        """Term ``j`` of the T-step bound for a given :math:`x_{t_j}`: per sequence
        :math:`\\sum_{masked}\\mathrm{KL}(Q\\text{'s step}\\,\\|\\,\\text{the chain's step})`."""
        valid = _valid_or_all(x0, valid)
        law = self.steps
        j = j.to(torch.long).cpu()
        masked = (x_t == self.vocab.mask_id) & valid
        rate = law.rate[j].to(x0.device)
        rows, ce, lam = self.token_terms(model, x0, x_t, valid, rate, masked)
        jr = j.to(x0.device)[rows]
        rho = law.rho.to(x0.device)[jr]
        log_a = law.log_reveal(jr, lam.double())
        # Where Q reveals surely (rho = 1) the "stays masked" term is 0; keep its inputs
        # finite there so that no 0 * inf reaches the value or the gradient.
        moves = rho < 1.0
        rho_s = torch.where(moves, rho, torch.zeros_like(rho))
        log_a_s = torch.where(moves, log_a, torch.full_like(log_a, -1.0))
        stay = (1.0 - rho_s) * (torch.log1p(-rho_s) - torch.log(-torch.expm1(log_a_s)))
        kl = rho * (torch.log(rho) - log_a + ce.double()) + torch.where(moves, stay, torch.zeros_like(stay))
        return self._sum_rows(rows, kl, x0.shape[0])

    # ---------------------------------------------------------------- the objective
    def _mask(self, x0: Tensor, masked: Tensor) -> Tensor:
        return x0.masked_fill(masked, self.vocab.mask_id)

    def loss(
        self,
        model: Backbone,
        x0: Tensor,
        valid: Tensor | None = None,
        *,
        fixed: Tensor | None = None,
        generator: torch.Generator | None = None,
        estimator: str | None = None,
        offset: int = 0,
        total: int | None = None,
    ) -> LossOutput:
        """Monte-Carlo estimate of the bound, one draw per sequence stratified over the
        global batch; ``fixed`` tokens are never masked nor scored (a bound on
        :math:`-\\log p(y\\mid c)`)."""
        if unwrap(model).causal:
            raise ValueError("ScoreEntropyDiffusion: the backbone is causal; use the autoregressive process")
        estimator = estimator or self.estimator
        if estimator not in ESTIMATORS:
            raise ValueError(f"ScoreEntropyDiffusion: estimator must be one of {ESTIMATORS}, got {estimator!r}")
        if self.num_steps and estimator != "time":
            raise ValueError("ScoreEntropyDiffusion: the T-step bound (num_steps > 0) needs estimator=time")
        valid = _valid_or_all(x0, valid)
        self._check_targets(x0, valid)
        targets = valid if fixed is None else valid & ~fixed.bool()
        B, L = x0.shape
        dev = x0.device
        u = stratified_uniform(B, generator=generator, offset=offset, total=total)
        rows_u = uniform((total or B, L), generator=generator)[offset : offset + B].to(dev)
        if self.num_steps:
            T = self.num_steps
            j = torch.ceil(u * T).clamp(1, T).long()
            q = self.steps.rate[j] / self._rate_1
            x_t = self._mask(x0, (rows_u < q.to(dev, torch.float32).unsqueeze(1)) & targets)
            bound = T * self.step_at(model, x0, x_t, j, valid)
        elif estimator == "count":
            n = targets.sum(1).to(torch.float64).cpu()
            k = torch.clamp(torch.ceil(u * n), min=1.0).where(n > 0, torch.zeros_like(n))
            masked, q = order_statistic_mask(targets, k.long().to(dev), u=rows_u)
            inside = (q.double() >= self._qrate_0).to(dev)
            masked = masked & inside.unsqueeze(1)
            weight = (n / k.clamp(min=1.0)).to(dev)
            dse = self.score_entropy(model, x0, self._mask(x0, masked), valid, q.double().to(dev) * self._rate_1)
            bound = weight * dse.double()
        else:
            t = (self.t_min + (1.0 - self.t_min) * u).to(dev)
            q = self.q_rate(t)
            x_t = self._mask(x0, (rows_u < q.to(torch.float32).unsqueeze(1)) & targets)
            bound = (1.0 - self.t_min) * self.loss_at(model, x0, x_t, t, valid).double()
        if self._qrate_0 > 0.0:  # the final reveal: only rows with a masked token cost a pass
            u0 = uniform((total or B, L), generator=generator)[offset : offset + B].to(dev)
            masked0 = (u0.double() < self._qrate_0) & targets
            rows = masked0.any(1).nonzero(as_tuple=True)[0]
            if len(rows):
                sub = self.final_at(model, x0[rows], self._mask(x0[rows], masked0[rows]), valid[rows])
                bound = bound.index_add(0, rows, sub.to(bound.dtype))
        num_tokens = targets.sum(1)
        loss = bound.sum() / num_tokens.sum().clamp(min=1)
        return LossOutput(loss=loss.float(), nelbo=bound.detach().double(), num_tokens=num_tokens)

    def nelbo(
        self,
        model: Backbone,
        x0: Tensor,
        valid: Tensor | None = None,
        *,
        fixed: Tensor | None = None,
        generator: torch.Generator | None = None,
        estimator: str | None = None,
        offset: int = 0,
        total: int | None = None,
    ) -> LossOutput:
        """The bound (the training objective is the bound itself)."""
        return self.loss(model, x0, valid, fixed=fixed, generator=generator, estimator=estimator,
                         offset=offset, total=total)

    def _check_targets(self, x0: Tensor, valid: Tensor) -> None:
        bad = self.vocab.forbidden_mask(x0.device)[x0] & valid
        if bad.any():
            b, i = (int(v) for v in bad.nonzero()[0])
            raise ValueError(
                f"ScoreEntropyDiffusion: data token id {int(x0[b, i])} at batch row {b}, position {i} is one the "
                "model may never generate (mask/pad/never_generate); mark such positions invalid instead"
            )

    def describe(self) -> dict:
        return {
            **super().describe(),
            "schedule": repr(self.schedule),
            "num_steps": self.num_steps,
            "estimator": self.estimator,
            "t_min": self.t_min,
            **({"predictor": self.predictor} if self.num_steps else {}),
            **({"mass_conserving": True} if self.mass_conserving else {}),
        }


class SEDDDenoiser:
    """Sampler-facing view of a SEDD model.

    ``denoiser(x_t, rate, valid, positions)`` returns the normalised scores
    :math:`\\log p_\\theta(x_0|x_t)` (the usual contract, so ancestral, EAGS, semi-AR, ...
    run on a SEDD model; the ancestral sampler then draws the :math:`\\lambda:=0` chain);
    ``score_parts`` the concrete scores as ``(log p_theta, lambda)``,
    :math:`s_y=r\\,e^\\lambda p_\\theta(y)`, for SEDD's samplers.
    """

    def __init__(self, process: ScoreEntropyDiffusion, model: Backbone) -> None:
        self.process = process
        self.model = model

    def __call__(self, x_t: Tensor, rate: Tensor, valid: Tensor, positions: Tensor) -> Tensor:
        return self.process.log_probs(self.model, x_t, rate, valid, positions)

    def score_parts(self, x_t: Tensor, rate: Tensor, valid: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
        return self.process.score_parts(self.model, x_t, rate, valid, positions)
