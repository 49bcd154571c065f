r"""Left-to-right (autoregressive) baseline with the same interface as the masked process.

The network reads ``[START, x_0, ..., x_{L-2}]`` and predicts ``x_0, ..., x_{L-1}``, so
every real token is a target and the per-token count matches the diffusion NELBO
exactly. ``START`` is the vocabulary's [MASK] id: it never occurs in data, needs no
extra embedding row, and keeps checkpoints of the two processes shape-compatible.
The "NELBO" returned here is the exact negative log-likelihood.

**Gaps.** With invalid positions inside a row (N bases under ``ns: ignore``, soft-masked
repeats under ``softmask: ignore``, left padding) the *input* is masked with the
*shifted* validity: input position ``i`` holds ``x_{i-1}`` and is visible iff
``valid[i-1]`` (``START`` at 0 always is). For an invalid run ``a..b`` every later target
then reads ``START, x_0 .. x_{a-1}`` and the real tokens after the run, never a token
inside it:

.. math::
    -\log p(x) = -\sum_{i:\,\mathrm{valid}_i} \log p_\theta\big(x_i \mid
    \{x_j : j < i,\ \mathrm{valid}_j\}\big).

An invisible input is also *replaced* by ``START``'s id: attention masks (and Mamba's
identity steps) keep it from other positions, but the position that holds it would
still read its embedding through the residual stream.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from seqdiff.backbones.base import Backbone, supports_incremental_decoding
from seqdiff.processes.base import LossOutput, Process
from seqdiff.processes.masked import _valid_or_all
from seqdiff.vocab import VocabSpec


class AutoregressiveProcess(Process):
    """Next-token prediction on a causal backbone; ``loss`` and ``nelbo`` are the exact NLL
    in nats (``objective="nll"``, ``exact_likelihood``; no draw, so ``generator``,
    ``offset`` and ``total`` change nothing)."""

    kind = "autoregressive"
    causal = True
    exact_likelihood = True
    estimators = ("exact",)

    def __init__(self, vocab: VocabSpec) -> None:
        self.vocab = vocab
        self.time_conditioning = False
        self.schedule = None
        self.num_steps = 0
        self.estimator = "exact"
        self.objective = "nll"
        self.loss_is_nelbo = True

    def shift_right(self, x0: Tensor) -> Tensor:
        start = torch.full_like(x0[:, :1], self.vocab.mask_id)
        return torch.cat([start, x0[:, :-1]], dim=1)

    def inputs(self, x0: Tensor, valid: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(x_in, visible)``: the shifted tokens, invisible ones replaced by ``START``, and
        the shifted validity (``START`` always visible) that the backbone masks them with."""
        valid = _valid_or_all(x0, valid)
        visible = torch.cat([torch.ones_like(valid[:, :1]), valid[:, :-1]], dim=1)
        return self.shift_right(x0).masked_fill(~visible, self.vocab.mask_id), visible

    def log_probs(self, model: Backbone, x0: Tensor, valid: Tensor | None = None) -> Tensor:
        """Per-position :math:`\\log p(x_i | x_{<i})` distributions ``[B, L, V]`` (only the
        valid positions' are meaningful; each reads the valid tokens before it)."""
        x_in, visible = self.inputs(x0, valid)
        return self.vocab.log_softmax_allowed(model(x_in, None, visible))

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
    ) -> LossOutput:
        """Exact NLL; ``fixed`` (condition) positions are read but not scored, so with the
        condition first this is :math:`-\\log p(y \\mid c)`."""
        self.check_backbone(model, time_conditioning=False)
        valid = _valid_or_all(x0, valid)
        targets = valid if fixed is None else valid & ~fixed.bool()
        x_in, visible = self.inputs(x0, valid)
        logits = model(x_in, None, visible, output_mask=targets)
        ce = F.nll_loss(self.vocab.log_softmax_allowed(logits), x0[targets], reduction="none")
        rows = targets.nonzero(as_tuple=True)[0]
        nll = torch.zeros(x0.shape[0], dtype=ce.dtype, device=x0.device).index_add(0, rows, ce)
        num_tokens = targets.sum(1)
        return LossOutput(loss=nll.sum() / num_tokens.sum().clamp(min=1), nelbo=nll.detach().double(), num_tokens=num_tokens)

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
        """The exact NLL (the loss itself); ``estimator`` may only be ``"exact"``."""
        self.eval_estimator(estimator)
        return self.loss(model, x0, valid, fixed=fixed, generator=generator, offset=offset, total=total)

    def estimate_is_bound(self, estimator: str) -> bool:
        return True  # an exact NLL

    def estimand(self, estimator: str) -> str:
        return "exact NLL"

    def denoiser(self, model: Backbone) -> "ARDenoiser":
        return ARDenoiser(self, model)


class ARDenoiser:
    """Sampler-facing view of an AR model.

    Called like every denoiser, ``(x_t, rate, valid, positions) -> log p(x_i | x_<i)`` at
    the selected positions (the whole prefix is recomputed). When the backbone supports
    incremental decoding (a KV cache or a recurrent state), :meth:`start` / :meth:`step`
    decode one position at a time in O(1) backbone work per token.
    """

    def __init__(self, process: AutoregressiveProcess, model: Backbone) -> None:
        self.process = process
        self.model = model
        self.incremental = supports_incremental_decoding(model)
        self._cache = None

    def _log_softmax(self, logits: Tensor) -> Tensor:
        return self.process.vocab.log_softmax_allowed(logits)

    def __call__(self, x_t: Tensor, rate: Tensor, valid: Tensor, positions: Tensor) -> Tensor:
        x_in, visible = self.process.inputs(x_t, valid)
        return self._log_softmax(self.model(x_in, None, visible, output_mask=positions))

    def start(self, batch_size: int, max_length: int) -> None:
        self._cache = self.model.init_cache(batch_size, max_length)

    def step(self, previous: Tensor) -> Tensor:
        """Feed the previous tokens ``[B]`` (``None`` at position 0: the start token)."""
        return self._log_softmax(self.model.decode_step(previous, self._cache))
