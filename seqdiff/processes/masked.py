r"""Absorbing-state (masked) diffusion in the MDLM formulation.

Forward process: each real token is independently replaced by [MASK] with probability
:math:`1-\alpha(t)`. Reverse model: the SUBS parameterisation of the backbone's logits
(zero probability for [MASK] and every ``never_generate`` id; unmasked tokens are
carried over unchanged). Training objective, continuous time (MDLM eq. 10):

.. math::
    \mathcal{L}_\infty = \int_0^1 \frac{-\alpha'(t)}{1-\alpha(t)}\,
    \mathbb{E}_{q(x_t|x_0)} \sum_{i:\,x_t^i=\mathrm{m}} -\log p_\theta(x_0^i \mid x_t)\,dt,

and discrete time with ``T`` steps :math:`t_j=j/T` (the D3PM-absorbing bound with SUBS):

.. math::
    \mathcal{L}_T = \sum_{j=1}^{T} \mathbb{E}_{q(x_{t_j}|x_0)}
    \frac{\alpha_{t_{j-1}}-\alpha_{t_j}}{1-\alpha_{t_j}}
    \sum_{i:\,x_{t_j}^i=\mathrm{m}} -\log p_\theta(x_0^i \mid x_{t_j}).

**Which model these bound.** Every sampler starts from all-[MASK]. The ancestral sampler
reveals a token at step :math:`j` w.p. :math:`(\alpha_{j-1}-\alpha_j)/(1-\alpha_T)`: it
runs the chain of the *normalised* schedule
:math:`\tilde\alpha(t)=(\alpha(t)-\alpha(1))/(1-\alpha(1))`, :math:`\tilde\alpha(1)=0`,
and feeds the model the rate :math:`1-\alpha(t_j)`. A schedule's ``eps``
(:math:`\alpha(1)=\varepsilon`) therefore changes nothing the sampler does; the bound that
matters is the NELBO of this model, :math:`\mathcal{L}` on :math:`\tilde\alpha`, and that
is what the estimators below call a bound:

``"count"`` (continuous time; the evaluation default)
    Rao-Blackwellised over :math:`t`: draw the number of masked tokens :math:`k`
    (stratified, uniform on :math:`1..n`), mask a uniform subset of that size, weight
    :math:`n/k`. Substituting :math:`a=\tilde\alpha(t)` shows
    :math:`\int_0^1 \tbinom{n}{k}(1-a)^{k-1}a^{n-k}da = 1/k`, so its mean is exactly
    :math:`\mathcal{L}_\infty` on :math:`\tilde\alpha` (for a denoiser that does not see
    :math:`t`, the same for every schedule): an upper bound on the NLL of the
    continuous-time model (the ancestral sampler as :math:`T\to\infty`), with finite
    variance and no truncation. A time-conditioned denoiser gets the rate the sampler would
    give it, :math:`(1-\alpha(1))\,r` with :math:`r\sim\mathrm{Beta}(k, n-k+1)` the
    posterior masking rate given :math:`k`, so it stays exact.
T-step (``num_steps = T > 0``)
    :math:`\mathcal{L}_T` on :math:`\tilde\alpha`: step :math:`j` stratified uniform on
    ``1..T``, each token masked w.p. :math:`1-\tilde\alpha_j=(1-\alpha_j)/(1-\alpha_T)`
    (all of them at :math:`j=T`, so there is no prior term), weight
    :math:`T(\alpha_{j-1}-\alpha_j)/(1-\alpha_j)` (the same on both schedules). Its mean
    is the NELBO of the T-step ancestral sampler's model, a bound on that model's NLL.
    (Masking w.p. :math:`1-\alpha_j`, as MDLM's discrete-time loss does, gives a number
    about 0.1% below it for ``eps = 1e-3``, for some sequences below the sampler's NLL.)
``"time"`` (MDLM's)
    Stratified :math:`t\sim U[t_{min},1]`, weight :math:`w(t)`, masking
    :math:`1-\alpha(t)`. Its mean,
    :math:`\frac{1}{1-t_{min}}\int_{t_{min}}^1 w(t)\,\mathbb{E}_{q_t}[\cdot]\,dt`, omits the
    mass at :math:`\alpha<\varepsilon` and :math:`t<t_{min}` and the :math:`1-t_{min}` of
    its density: with ``eps = t_min = 1e-3`` it is about 0.1% *below* the bound
    (0.05-0.14% per sequence on the toy of ``tests/processes/test_masked_bounds.py``). It is MDLM's
    training loss and the figure MDLM reports, so it is kept and labelled "eps-truncated,
    not a bound"; only with ``eps = t_min = 0`` is it an unbiased estimate of the bound
    (with unbounded variance near :math:`t=0`).

What :meth:`MaskedDiffusion.loss` trains on is declared by ``objective`` (its name in the
training metrics) and ``loss_is_nelbo``: ``"nelbo"`` for the bounds above,
``"truncated_nelbo"`` for MDLM's ``time`` estimator with ``eps`` or ``t_min`` > 0,
``"ens_objective"`` for ENS corruption (:mod:`seqdiff.processes.ens`), whose masked sets
are a deterministic function of the data, so it is a training objective, not a bound.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from seqdiff.backbones.base import Backbone, unwrap
from seqdiff.processes.base import LossOutput, Process
from seqdiff.processes.ens import ens_mask, token_entropies
from seqdiff.processes.time_sampling import order_statistic_mask, stratified_uniform, uniform
from seqdiff.schedules import LogLinearSchedule, Schedule
from seqdiff.vocab import VocabSpec

ESTIMATORS = ("time", "count")

__all__ = ["ESTIMATORS", "LossOutput", "MaskedDiffusion"]


class MaskedDiffusion(Process):
    """MDLM absorbing-state process with the SUBS parameterisation.

    Args:
        vocab: the vocabulary (mask id, ids never to generate).
        schedule: masking schedule; log-linear with eps=1e-3 by default.
        num_steps: ``0`` for the continuous-time NELBO, ``T > 0`` for the T-step bound.
        time_conditioning: pass the masking rate to the backbone (off in MDLM).
        estimator: ``"time"`` (MDLM) or ``"count"`` (Rao-Blackwellised), see module doc.
        t_min: lower end of training/eval times for the ``"time"`` estimator.
        corruption: ``"uniform"`` (MDLM) or ``"ens"`` (:mod:`seqdiff.processes.ens`).
        ens_temperature, ens_groups, ens_weighting: ENS's Gumbel relaxation, leave-one-out
            groups and weighting.
        ens_entropy: ``"self"`` (the model being trained) or the path of a frozen
            reference (a seqdiff checkpoint or a Hugging Face masked-LM directory); the
            path is :attr:`reference`, loaded on first use by the loader the run binds.

    The :class:`~seqdiff.processes.base.Process` attributes: ``objective`` (the name of
    what :meth:`loss` estimates, used for it in the training metrics) and
    ``loss_is_nelbo`` (whether that is the NELBO of the sampler's model, i.e. a bound;
    see the module docstring); :meth:`nelbo` always masks uniformly (never ENS), so its
    figure is the one its estimator's :meth:`estimand` names.
    """

    kind = "masked"
    causal = False
    exact_likelihood = False
    estimators = ESTIMATORS
    takes_labels = True

    def __init__(
        self,
        vocab: VocabSpec,
        schedule: Schedule | None = None,
        *,
        num_steps: int = 0,
        time_conditioning: bool = False,
        estimator: str = "time",
        t_min: float = 1e-3,
        corruption: str = "uniform",
        ens_temperature: float = 0.0,
        ens_entropy: str = "self",
        ens_groups: int = 4,
        ens_weighting: str = "nelbo",
    ) -> None:
        if estimator not in ESTIMATORS:
            raise ValueError(f"MaskedDiffusion: estimator must be one of {ESTIMATORS}, got {estimator!r}")
        if num_steps < 0:
            raise ValueError(f"MaskedDiffusion: num_steps must be >= 0, got {num_steps}")
        if num_steps > 0 and estimator == "count":
            raise ValueError("MaskedDiffusion: the 'count' estimator is for continuous time (num_steps=0)")
        if not 0.0 <= t_min < 1.0:
            raise ValueError(f"MaskedDiffusion: t_min must be in [0, 1), got {t_min}")
        if corruption not in ("uniform", "ens"):
            raise ValueError(f"MaskedDiffusion: corruption must be uniform or ens, got {corruption!r}")
        if ens_weighting not in ("nelbo", "mean"):
            raise ValueError(f"MaskedDiffusion: ens_weighting must be nelbo or mean, got {ens_weighting!r}")
        if corruption == "ens" and num_steps > 0:
            raise ValueError("MaskedDiffusion: ENS draws a number of masked tokens; use continuous time (num_steps=0)")
        self.corruption = corruption
        self.ens_temperature = float(ens_temperature)
        self.ens_entropy = ens_entropy
        self.ens_groups = int(ens_groups)
        self.ens_weighting = ens_weighting
        # A frozen entropy model is a reference the run loads (bind_reference), on first use.
        self.reference = str(ens_entropy) if corruption == "ens" and ens_entropy != "self" else None
        self._ens_reference: tuple[Backbone, Process] | None = None
        self.vocab = vocab
        self.schedule = schedule if schedule is not None else LogLinearSchedule()
        self.num_steps = int(num_steps)
        self.time_conditioning = bool(time_conditioning)
        self.estimator = estimator
        self.t_min = float(t_min)
        # alpha(1): the sampler starts from all-[MASK] whatever it is (module docstring)
        self.alpha_end = float(self.schedule.alpha(torch.tensor(1.0, dtype=torch.float64)))
        if corruption == "ens":
            self.objective = "ens_objective"
        else:
            self.objective = "nelbo" if self.estimate_is_bound(estimator) else "truncated_nelbo"
        self.loss_is_nelbo = self.objective == "nelbo"

    # ---------------------------------------------------------------- forward process
    def corrupt(
        self, x0: Tensor, t: Tensor, valid: Tensor | None = None, *, generator=None, u: Tensor | None = None
    ) -> Tensor:
        """Sample :math:`x_t\\sim q(x_t|x_0)`: mask each real token w.p. :math:`1-\\alpha(t)`
        (``u``: the per-token uniforms, drawn from ``generator`` if not given)."""
        valid = _valid_or_all(x0, valid)
        rate = (1.0 - self.schedule.alpha(t.double())).to(torch.float32)
        u = uniform(x0.shape, generator=generator, device=x0.device) if u is None else u.to(x0.device)
        masked = (u < rate.to(x0.device).unsqueeze(1)) & valid
        return x0.masked_fill(masked, self.vocab.mask_id)

    def model_time(self, rate: Tensor) -> Tensor | None:
        """What the backbone receives as ``t``: the masking rate, or None if not conditioned."""
        return rate.to(torch.float32) if self.time_conditioning else None

    # ---------------------------------------------------------------- parameterisation
    def subs_log_probs(self, logits: Tensor, x_t: Tensor | None = None) -> Tensor:
        """SUBS: log-softmax with zero mass on forbidden ids; with ``x_t``, unmasked
        positions carry their token over (a point mass)."""
        logp = self.vocab.log_softmax_allowed(logits)
        if x_t is not None:
            keep = x_t != self.vocab.mask_id
            point = torch.full_like(logp, float("-inf")).scatter_(-1, x_t.unsqueeze(-1), 0.0)
            logp = torch.where(keep.unsqueeze(-1), point, logp)
        return logp

    def denoise(
        self,
        model: Backbone,
        x_t: Tensor,
        rate: Tensor | None = None,
        valid: Tensor | None = None,
        positions: Tensor | None = None,
        label: Tensor | None = None,
    ) -> Tensor:
        """:math:`\\log p_\\theta(x_0|x_t[, y])` under SUBS, float32.

        Returns ``[B, L, V]``, or ``[N, V]`` for the ``positions`` selected by a bool
        ``[B, L]`` mask (only those rows of the output projection are computed).
        ``label``: ``[B, F]`` ids (or ``[F]``, shared by every row), or None.
        """
        t_in = self.model_time(rate) if rate is not None else None
        if self.time_conditioning and t_in is None:
            raise ValueError("MaskedDiffusion: a time-conditioned model needs the masking rate")
        logits = model(x_t, t_in, valid, output_mask=positions, **_label_kw(label, x_t))
        return self.subs_log_probs(logits, x_t if positions is None else x_t[positions])

    def denoiser(self, model: Backbone, label: Tensor | None = None):
        """The sampler-facing callable ``(x_t, rate, valid, positions) -> log_probs [N, V]``;
        with ``label`` (``[F]``: every row's; ``[b, F]``: the rows of each call), conditional."""

        def fn(x_t: Tensor, rate: Tensor, valid: Tensor, positions: Tensor) -> Tensor:
            return self.denoise(model, x_t, rate, valid, positions, label=label)

        return fn

    # ---------------------------------------------------------------- the objective
    def masked_cross_entropy(
        self, model: Backbone, x0: Tensor, x_t: Tensor, valid: Tensor, rate: Tensor | None,
        label: Tensor | None = None,
    ) -> Tensor:
        """Per-sequence :math:`\\sum_{i\\ \\mathrm{masked}} -\\log p_\\theta(x_0^i|x_t[, y])` (nats)."""
        masked = (x_t == self.vocab.mask_id) & valid
        logits = model(x_t, self.model_time(rate) if rate is not None else None, valid, output_mask=masked,
                       **_label_kw(label, x_t))
        ce = F.nll_loss(self.vocab.log_softmax_allowed(logits), x0[masked], reduction="none")
        rows = masked.nonzero(as_tuple=True)[0]
        return torch.zeros(x0.shape[0], dtype=ce.dtype, device=x0.device).index_add(0, rows, ce)

    def loss_at(self, model: Backbone, x0: Tensor, x_t: Tensor, t: Tensor, valid: Tensor | None = None) -> Tensor:
        """The continuous-time integrand at time ``t`` for a given ``x_t``:
        :math:`w(t)\\sum_{masked} -\\log p_\\theta` per sequence."""
        valid = _valid_or_all(x0, valid)
        t = t.to(x0.device, torch.float64)
        rate = 1.0 - self.schedule.alpha(t)
        ce = self.masked_cross_entropy(model, x0, x_t, valid, rate)
        return self.schedule.weight(t).to(ce.dtype) * ce

    def time_law(self, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        r"""The ``time`` / T-step estimators at uniforms ``u`` in ``(0, 1]``: per row
        ``(masking probability, the rate the model is given, NELBO weight)``, float64.

        T-step: :math:`j=\lceil uT\rceil`, masking :math:`(1-\alpha_j)/(1-\alpha_T)`,
        rate :math:`1-\alpha_j`; continuous time: :math:`t=t_{min}+(1-t_{min})u`,
        masking and rate :math:`1-\alpha(t)`, weight :math:`w(t)` (module docstring).
        """
        u = u.double()
        if self.num_steps > 0:
            T = self.num_steps
            j = torch.ceil(u * T).clamp(1, T)
            t, s = j / T, (j - 1) / T
            rate = 1.0 - self.schedule.alpha(t)
            return rate / (1.0 - self.alpha_end), rate, T * self.schedule.reveal_probability(t, s)
        t = self.t_min + (1.0 - self.t_min) * u
        rate = 1.0 - self.schedule.alpha(t)
        return rate, rate, self.schedule.weight(t)

    def draw(
        self,
        x0: Tensor,
        valid: Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
        estimator: str | None = None,
        offset: int = 0,
        total: int | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One stratified draw of ``(x_t, model rate, NELBO weight)`` per sequence.

        ``offset``/``total`` place this batch inside a larger stratified global batch.
        """
        valid = _valid_or_all(x0, valid)
        estimator = estimator or self.estimator
        B, L = x0.shape
        u = stratified_uniform(B, generator=generator, offset=offset, total=total)
        # Per-token uniforms of the whole global batch, sliced: a row's mask then depends
        # only on its global index, so N ranks (or accumulation steps) draw exactly what
        # one process with the global batch would.
        rows = uniform((total or B, L), generator=generator)[offset : offset + B].to(x0.device)
        if estimator == "count":
            n = valid.sum(1).to(torch.float64).cpu()
            k = torch.clamp(torch.ceil(u * n), min=1.0).where(n > 0, torch.zeros_like(n))
            masked, rate = order_statistic_mask(valid, k.long().to(x0.device), u=rows)
            weight = (n / k.clamp(min=1.0)).to(x0.device)
            # the rate the sampler gives the model at this masking level (module docstring)
            return x0.masked_fill(masked, self.vocab.mask_id), (1.0 - self.alpha_end) * rate.double(), weight
        mask_prob, rate, weight = (v.to(x0.device) for v in self.time_law(u))
        masked = (rows < mask_prob.to(torch.float32).unsqueeze(1)) & valid
        return x0.masked_fill(masked, self.vocab.mask_id), rate, weight

    def draw_ens(
        self,
        model: Backbone,
        x0: Tensor,
        valid: Tensor,
        targets: Tensor,
        *,
        generator: torch.Generator | None = None,
        offset: int = 0,
        total: int | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """ENS corruption: ``k`` stratified as in the count estimator, the ``k`` lowest-
        entropy targets masked (see :mod:`seqdiff.processes.ens`).

        The group and tie-breaking uniforms are drawn for the whole global batch and
        sliced, as in :meth:`draw`, so ranks and accumulation steps see what one process
        holding the global batch would.
        """
        B, L = x0.shape
        u = stratified_uniform(B, generator=generator, offset=offset, total=total)
        n = targets.sum(1).to(torch.float64).cpu()
        k = torch.clamp(torch.ceil(u * n), min=1.0).where(n > 0, torch.zeros_like(n))
        deal = uniform((total or B, L), generator=generator, dtype=torch.float64)[offset : offset + B]
        ties = uniform((total or B, L), generator=generator, dtype=torch.float64)[offset : offset + B]
        H = self.token_entropies(model, x0, valid, targets, u=deal)
        masked = ens_mask(H, targets, k.long(), temperature=self.ens_temperature, u=ties)
        if self.ens_weighting == "nelbo":
            weight = n / k.clamp(min=1.0)
        else:  # "mean": every masked token weighs the same (CMLM / the paper's cross-entropy)
            weight = torch.full_like(n, float(n.sum() / k.sum().clamp(min=1.0)))
        rate = (k / n.clamp(min=1.0)).to(x0.device)
        return x0.masked_fill(masked, self.vocab.mask_id), rate, weight.to(x0.device)

    def token_entropies(
        self, model: Backbone, x0: Tensor, valid: Tensor, targets: Tensor, *, generator=None, u: Tensor | None = None
    ) -> Tensor:
        """Per-token LOO entropies for ENS from the model itself (``ens_entropy="self"``,
        eval mode, no gradient) or from a frozen reference: a seqdiff checkpoint, or a
        Hugging Face masked-LM directory (the pretrained MLM of Diffusion-EAGS)."""
        if self.reference is None:
            net, proc = unwrap(model), self
        else:
            if self._ens_reference is None:  # first use: the loader the run bound
                self._ens_reference = self.load_reference()
            net, proc = self._ens_reference
            net = net.to(x0.device)
        was_training = net.training
        net.eval()
        try:
            rate = torch.full((x0.shape[0],), 1.0 / self.ens_groups, dtype=torch.float64, device=x0.device)

            def fn(x_t: Tensor, v: Tensor, pos: Tensor) -> Tensor:
                return proc.denoise(net, x_t, rate[: x_t.shape[0]], v, pos)

            return token_entropies(fn, x0, valid, targets, mask_id=self.vocab.mask_id, groups=self.ens_groups,
                                   generator=generator, u=u)
        finally:
            net.train(was_training)

    def loss(
        self,
        model: Backbone,
        x0: Tensor,
        valid: Tensor | None = None,
        *,
        fixed: Tensor | None = None,
        generator: torch.Generator | None = None,
        offset: int = 0,
        total: int | None = None,
        label: Tensor | None = None,
    ) -> LossOutput:
        """The training objective of a batch (one draw per sequence, stratified over the
        global batch): the estimator :attr:`estimator`, or ENS corruption (``objective``).

        ``fixed`` marks condition tokens (a source sentence, flanks): always visible,
        never masked, never scored, so the result bounds :math:`-\\log p(y \\mid c)`;
        ``label [B, F]`` is given to the model (label dropout is the trainer's, before).
        """
        return self._estimate(model, x0, valid, fixed=fixed, generator=generator, offset=offset, total=total,
                              estimator=None if self.corruption == "ens" else self.estimator, label=label)

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
        label: Tensor | None = None,
    ) -> LossOutput:
        """Monte-Carlo estimate with ``estimator`` (default :attr:`estimator`), always under
        uniform masking: what :meth:`estimand` says, whatever the training corruption; with
        ``label [B, F]``, of the conditional model (a bound on :math:`-\\log p(x \\mid y)`)."""
        estimator = estimator or self.estimator
        if estimator not in ESTIMATORS:
            raise ValueError(f"MaskedDiffusion: estimator must be one of {ESTIMATORS}, got {estimator!r}")
        return self._estimate(model, x0, valid, fixed=fixed, generator=generator, offset=offset, total=total,
                              estimator=estimator, label=label)

    def _estimate(self, model: Backbone, x0: Tensor, valid: Tensor | None, *, fixed: Tensor | None,
                  generator: torch.Generator | None, offset: int, total: int | None,
                  estimator: str | None, label: Tensor | None = None) -> LossOutput:
        """One draw per sequence: ``estimator`` under uniform masking, or (``None``) ENS."""
        self.check_backbone(model, time_conditioning=False)
        valid = _valid_or_all(x0, valid)
        self._check_targets(x0, valid)
        targets = valid if fixed is None else valid & ~fixed.bool()
        if estimator is None:
            if label is not None:
                raise ValueError("MaskedDiffusion: ENS corruption does not take labels yet (process.corruption=uniform)")
            x_t, rate, weight = self.draw_ens(model, x0, valid, targets, generator=generator, offset=offset, total=total)
        else:
            x_t, rate, weight = self.draw(x0, targets, generator=generator, estimator=estimator, offset=offset, total=total)
        ce = self.masked_cross_entropy(model, x0, x_t, valid, rate, label)
        nelbo = weight.to(ce.dtype) * ce
        num_tokens = targets.sum(1)
        loss = nelbo.sum() / num_tokens.sum().clamp(min=1)
        return LossOutput(loss=loss, nelbo=nelbo.detach().double(), num_tokens=num_tokens)

    # ---------------------------------------------------------------- what a number is
    def eval_estimator(self, requested: str | None = None) -> str:
        """The estimator evaluation uses: ``requested``, by default the exact bound
        (``count`` in continuous time; for ``num_steps > 0`` the T-step bound, ``time``)."""
        if requested is None:
            return "time" if self.num_steps > 0 else "count"
        if requested not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS} or null, got {requested!r}")
        if requested == "count" and self.num_steps > 0:
            raise ValueError(
                f"the count estimator is for continuous time, but this process has num_steps={self.num_steps} "
                "(the T-step bound); leave the estimator unset (null) or set process.num_steps=0"
            )
        return requested

    def estimate_is_bound(self, estimator: str) -> bool:
        """Whether ``estimator``'s mean is the NELBO of the sampler's model (an upper bound
        on its NLL), rather than MDLM's eps/t_min-truncated figure."""
        if estimator == "count" or self.num_steps > 0:
            return True
        return self.t_min == 0.0 and self.alpha_end == 0.0

    def estimand(self, estimator: str) -> str:
        """One line saying what ``estimator``'s mean is (printed with every evaluation)."""
        if self.num_steps > 0:
            return f"NELBO of the {self.num_steps}-step ancestral sampler's model (a bound on its NLL)"
        if self.estimate_is_bound(estimator):
            return "NELBO, continuous time (a bound on the NLL of the all-[MASK] sampler's model as T -> inf)"
        return (f"eps-truncated, as MDLM reports (alpha(1)={self.alpha_end:g}, t in [{self.t_min:g}, 1]): "
                "slightly below the NELBO, not a bound")

    def _check_targets(self, x0: Tensor, valid: Tensor) -> None:
        bad = self.vocab.forbidden_mask(x0.device)[x0] & valid
        if bad.any():
            b, i = (int(v) for v in bad.nonzero()[0])
            raise ValueError(
                f"MaskedDiffusion: data token id {int(x0[b, i])} at batch row {b}, position {i} is one the "
                "model may never generate (mask/pad/never_generate); mark such positions invalid instead"
            )

    def describe(self) -> dict:
        return {
            **super().describe(),
            "schedule": repr(self.schedule),
            "num_steps": self.num_steps,
            "estimator": self.estimator,
            "t_min": self.t_min,
            "corruption": self.corruption,
            **({"ens_temperature": self.ens_temperature, "ens_entropy": self.ens_entropy, "ens_groups": self.ens_groups,
                "ens_weighting": self.ens_weighting} if self.corruption == "ens" else {}),
        }


def _label_kw(label: Tensor | None, x_t: Tensor) -> dict:
    """The backbone's ``label`` keyword: ``[B, F]`` ids (``[F]`` broadcast to every row), or
    nothing at all (an unlabelled backbone is never handed the keyword)."""
    if label is None:
        return {}
    label = label.to(x_t.device).long()
    if label.dim() == 1:
        label = label.unsqueeze(0).expand(x_t.shape[0], -1)
    return {"label": label}


def _valid_or_all(x: Tensor, valid: Tensor | None) -> Tensor:
    return torch.ones_like(x, dtype=torch.bool) if valid is None else valid.bool()
