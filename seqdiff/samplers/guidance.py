r"""Classifier-free guidance (Ho & Salimans 2022) as a denoiser, so every sampler has it.

A labelled model trained with label dropout gives both :math:`\log p_\theta(x_0 \mid x_t, y)`
(the label) and :math:`\log p_\theta(x_0 \mid x_t)` (the learned no-label id). Guidance with
scale :math:`w` samples each position from

.. math::
    \log p_w(x_0^i \mid x_t, y) = \log p(x_0^i \mid x_t, y)
        + w\,\bigl(\log p(x_0^i \mid x_t, y) - \log p(x_0^i \mid x_t)\bigr) - \log Z_i,

i.e. :math:`p_w \propto p(x_0\mid x_t,y)^{1+w}\,p(x_0\mid x_t)^{-w}`, renormalised over the
ids the model may generate (:meth:`VocabSpec.log_softmax_allowed`), in float64. Ids either
pass gives no mass keep none. The two passes are one backbone call on the batch stacked
with itself (labels, then no-labels): one call of twice the rows, which the samplers'
``nfe``/``calls`` count as one (the compute is about twice an unguided call's). ``w = 0`` returns the conditional pass
alone, bit for bit (the cached first-hitting sampler then stays exact); ``w > 0`` sharpens
toward tokens the label makes likelier than the mixture does.

Samplers only see the denoiser, so the ancestral (cached), semi-autoregressive, ordered /
EAGS and RC-symmetric samplers all guide unchanged, and fixed tokens are never asked for
(or, when they are, SUBS gives both passes the same point mass, which guidance keeps).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from seqdiff.vocab import VocabSpec

#: ``(x_t [b, L], rate [b], valid [b, L], positions [b, L], label [b, F]) -> log_probs [N, V]``:
#: the conditional denoiser with one label row per sequence of the call.
LabelledDenoiser = Callable[[Tensor, Tensor, Tensor, Tensor, Tensor], Tensor]

__all__ = ["GuidedDenoiser", "LabelledDenoiser", "guided_log_probs"]


def guided_log_probs(cond: Tensor, uncond: Tensor, scale: float, vocab: VocabSpec) -> Tensor:
    """:math:`\\mathrm{log\\_softmax}_{allowed}((1+w)\\log p_c - w \\log p_u)` per row, float64.

    An id with no mass under either pass keeps none (no ``inf - inf``); a row left with no
    mass at all (a point mass on an id the vocabulary forbids) keeps the conditional row."""
    lc, lu = cond.double(), uncond.double()
    w = float(scale)
    both = torch.isfinite(lc) & torch.isfinite(lu)
    z = torch.where(both, (1.0 + w) * lc - w * lu, torch.full_like(lc, float("-inf")))
    out = vocab.log_softmax_allowed(z, dtype=torch.float64)
    empty = ~torch.isfinite(out).any(-1, keepdim=True)
    return torch.where(empty, lc, out)


class GuidedDenoiser:
    """The sampler-facing denoiser of label ``label [F]`` at guidance scale ``scale``.

    Args:
        denoise: the labelled denoiser (:data:`LabelledDenoiser`).
        label: the label ids ``[F]``; ``null``: the no-label ids ``[F]``.
        scale: :math:`w \\ge 0`; 0 is the conditional model exactly.
        vocab: the ids guidance renormalises over.
    """

    def __init__(self, denoise: LabelledDenoiser, label: Tensor, null: Tensor, scale: float, vocab: VocabSpec) -> None:
        if not scale >= 0.0 or scale == float("inf"):
            raise ValueError(f"guidance: scale must be a finite number >= 0, got {scale}")
        label, null = torch.as_tensor(label).long().flatten(), torch.as_tensor(null).long().flatten()
        if label.shape != null.shape:
            raise ValueError(f"guidance: label {tuple(label.shape)} and no-label ids {tuple(null.shape)} differ")
        self.denoise, self.label, self.null = denoise, label, null
        self.scale, self.vocab = float(scale), vocab

    def __call__(self, x_t: Tensor, rate: Tensor, valid: Tensor, positions: Tensor) -> Tensor:
        b = x_t.shape[0]
        y = self.label.to(x_t.device).unsqueeze(0).expand(b, -1)
        if self.scale == 0.0:
            return self.denoise(x_t, rate, valid, positions, y)
        two = lambda t: t if t.dim() == 0 else torch.cat([t, t])  # noqa: E731
        labels = torch.cat([y, self.null.to(x_t.device).unsqueeze(0).expand(b, -1)])
        lp = self.denoise(two(x_t), two(rate), two(valid), two(positions), labels)
        n = lp.shape[0] // 2  # row major: the first b rows' positions, then the same again
        return guided_log_probs(lp[:n], lp[n:], self.scale, self.vocab)
