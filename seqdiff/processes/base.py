r"""The process contract: what a corruption process and its objective declare and compute.

A process (MDLM's masked diffusion, the autoregressive baseline, SEDD) is written against
this page. The trainer calls :meth:`Process.loss`, the evaluator :meth:`Process.nelbo`
with an estimator from :meth:`Process.eval_estimator`, the samplers the callable of
:meth:`Process.denoiser`; everything else they need is a declared attribute, never found
by probing the object.

Shapes: ``x0 [B, L]`` token ids; ``valid [B, L]`` bool (False: padding or positions that
are not targets, never attended to; ``None``: all real); ``fixed [B, L]`` bool (condition
tokens: always visible, never corrupted, never scored, so the result is about
:math:`-\log p(y \mid c)`); ``label [B, F]`` long (label ids per sequence,
:mod:`seqdiff.labels`; only a process with ``takes_labels``): passed to the backbone, given
and never scored, so :meth:`Process.nelbo` is the *conditional* NELBO, a bound on
:math:`-\log p(x \mid y)`. Every per-sequence figure is in nats.

What a number is, declared (the house rule: a bound is called one only if it is one):

``objective`` / ``loss_is_nelbo``
    the name :meth:`loss` is logged under in the training metrics, and whether its mean
    is the NELBO of the model the samplers draw from (an upper bound on its NLL).
``exact_likelihood``
    :meth:`nelbo` is an exact NLL (no Monte-Carlo draw; one evaluation pass suffices).
``estimators`` / ``estimator``
    the estimators :meth:`nelbo` accepts and the one it uses when given none;
    :meth:`estimate_is_bound` and :meth:`estimand` say what each one's mean is.

What the backbone must be: ``causal`` (left-to-right) or not, and time-conditioned iff
``time_conditioning``; :meth:`check_backbone` is the one place that checks it.

A process that reads a frozen *reference* model (ENS entropies from a pretrained MLM or
another run) names it in :attr:`Process.reference`; it never loads checkpoints itself.
Whoever builds models (:func:`seqdiff.run.build_run`) hands it a loader with
:meth:`Process.bind_reference`, which the process calls on first use.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
from torch import Tensor

from seqdiff.backbones.base import Backbone, unwrap
from seqdiff.errors import ConfigError
from seqdiff.schedules import Schedule
from seqdiff.vocab import VocabSpec

#: ``(x_t [b, L], rate [b], valid [b, L], positions [b, L] bool) -> log_probs [N, V]``: what
#: :meth:`Process.denoiser` returns and samplers call (:class:`seqdiff.samplers.Denoiser`).
DenoiserFn = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]
#: Loads a process's :attr:`~Process.reference`: ``() -> (backbone, process that reads it)``;
#: ``None`` as the process means "read it with the process itself" (a bare HF masked LM).
ReferenceLoader = Callable[[], "tuple[Backbone, Process | None]"]


@dataclass
class LossOutput:
    """``loss``: differentiable token mean of the objective (nats); ``nelbo``: its
    per-sequence value in nats (detached): a NELBO estimate, the exact NLL for an
    exact-likelihood process, or, from :meth:`Process.loss` of a process whose
    ``loss_is_nelbo`` is False, the per-sequence training objective (e.g. ENS);
    ``num_tokens``: scored tokens per sequence."""

    loss: Tensor
    nelbo: Tensor
    num_tokens: Tensor


class Process(ABC):
    """A corruption process, its parameterisation of the backbone, and its objective.

    Class attributes:
        kind: ``"masked"``, ``"autoregressive"``, ``"sedd"``, ...; samplers declare the
            kinds they draw from (``Sampler.process_kinds``).
        causal: the backbone must be causal (left-to-right); False: bidirectional.
        exact_likelihood: :meth:`nelbo` is the exact NLL.
        estimators: the estimator names :meth:`nelbo` accepts.
        takes_labels: :meth:`loss`, :meth:`nelbo` and :meth:`denoiser` take ``label``
            (a labelled run is refused on a process without it).

    Instance attributes:
        vocab: the vocabulary.
        time_conditioning: the backbone receives the noise level (and must use it).
        schedule: the noise schedule samplers follow, or None (no schedule).
        num_steps: ``0`` for continuous time, ``T > 0`` for a T-step bound.
        estimator: :meth:`nelbo`'s default estimator, one of ``estimators``.
        objective, loss_is_nelbo: what :meth:`loss` is (module docstring).
        reference: path of a frozen reference model the process reads, or None.
    """

    kind: ClassVar[str]
    causal: ClassVar[bool] = False
    exact_likelihood: ClassVar[bool] = False
    estimators: ClassVar[tuple[str, ...]]
    takes_labels: ClassVar[bool] = False

    vocab: VocabSpec
    time_conditioning: bool = False
    schedule: Schedule | None = None
    num_steps: int = 0
    estimator: str
    objective: str
    loss_is_nelbo: bool
    reference: str | None = None
    _reference_loader: ReferenceLoader | None = None

    # ------------------------------------------------------------------ computing
    @abstractmethod
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
        """The training objective of a batch, one draw per sequence.

        ``generator`` drives every random draw; ``offset``/``total`` place this batch's
        rows inside a global batch of ``total`` rows (ranks, accumulation steps), so the
        draws of a row depend only on its global index.
        """

    @abstractmethod
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
        """Per-sequence likelihood figure with ``estimator`` (default :attr:`estimator`);
        what its mean is: :meth:`estimate_is_bound`, :meth:`estimand`."""

    @abstractmethod
    def denoiser(self, model: Backbone) -> DenoiserFn:
        """The sampler-facing callable ``(x_t, rate, valid, positions) -> log_probs [N, V]``:
        :math:`\\log p_\\theta(x_0^i \\mid x_t)` at the ``N`` selected positions (row major).

        A process with ``takes_labels`` also accepts ``denoiser(model, label=ids)``: ``[F]``
        ids shared by every row it is called on (samplers call it on any subset of a batch's
        rows, so one label per call; :meth:`seqdiff.Run.generate` groups rows by label), or
        ``[b, F]`` ids of exactly the rows of each call (classifier-free guidance)."""

    # ------------------------------------------------------------------ what a number is
    def eval_estimator(self, requested: str | None = None) -> str:
        """The estimator an evaluation uses: ``requested`` (checked), by default :attr:`estimator`.
        Raises ``ValueError`` naming the accepted ones."""
        if requested is None:
            return self.estimator
        if requested not in self.estimators:
            raise ValueError(f"estimator must be one of {self.estimators} or null, got {requested!r}")
        return requested

    @abstractmethod
    def estimate_is_bound(self, estimator: str) -> bool:
        """Whether ``estimator``'s mean is an upper bound on the sampler's model's NLL
        (an exact NLL counts as one)."""

    @abstractmethod
    def estimand(self, estimator: str) -> str:
        """One line saying what ``estimator``'s mean is (printed with every evaluation)."""

    # ------------------------------------------------------------------ the backbone
    def check_backbone(self, model: torch.nn.Module, *, time_conditioning: bool = True) -> None:
        """Raise :class:`~seqdiff.errors.ConfigError` if ``model`` (DDP/compile wrappers
        looked through) is not what this process needs: causal iff :attr:`causal`, and,
        with ``time_conditioning``, time-conditioned iff :attr:`time_conditioning`."""
        net = unwrap(model)
        causal = bool(net.causal)  # declared by every Backbone
        if self.causal and not causal:
            raise ConfigError(f"backbone: the {self.kind} process needs a causal backbone (backbone.causal=true)")
        if not self.causal and causal:
            raise ConfigError(f"backbone: a causal backbone cannot be trained with the {self.kind} process "
                              "(use process=autoregressive, or backbone.causal=false)")
        if time_conditioning and bool(self.time_conditioning) != bool(net.time_conditioning):
            raise ConfigError(
                f"process.time_conditioning={self.time_conditioning} but the backbone was built with "
                f"time_conditioning={net.time_conditioning}; set both the same"
            )

    # ------------------------------------------------------------------ a reference model
    def bind_reference(self, loader: ReferenceLoader) -> None:
        """Give the process the loader of its :attr:`reference` (called once, on first use)."""
        self._reference_loader = loader

    def load_reference(self) -> tuple[Backbone, "Process"]:
        """The reference ``(backbone, process that reads it)``, from the bound loader."""
        if self.reference is None:
            raise ValueError(f"{type(self).__name__}: this process reads no reference model")
        if self._reference_loader is None:
            raise ConfigError(
                f"process: the reference model {self.reference!r} cannot be loaded: no loader was bound "
                "(a run built with build_run binds one; or call process.bind_reference)"
            )
        net, proc = self._reference_loader()
        return net, (self if proc is None else proc)

    def describe(self) -> dict:
        """What the checkpoint's metadata records about the process."""
        return {"kind": self.kind, "time_conditioning": self.time_conditioning, "objective": self.objective}
