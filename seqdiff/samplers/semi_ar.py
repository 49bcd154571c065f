"""Semi-autoregressive generation beyond the trained length (MDLM's stride continuation).

A model trained on windows of ``block_length`` tokens generates ``N > block_length``
tokens window by window: the first window ``[0, L)`` is sampled as usual; then the
window slides right by ``stride`` and its first ``L - stride`` tokens, already
generated, are *fixed* (the core's fixed-token conditioning) while the ``stride`` new
positions are sampled given them, until the last window ends at ``N`` (it may overlap
the previous one by more than ``L - stride`` so that it ends exactly there). MDLM's
README example is ``L = 1024, stride = 512``, two strides: 2048 tokens.

Any fixed tokens of the caller's condition over the full length (a prompt prefix, a
suffix, a motif) stay fixed in every window that covers them, so prefix-conditioned
continuation is ``Condition.from_segments(N, {0: prompt_ids})``. The denoiser only ever
sees windows of the trained length. Each window runs a complete inner sampler (by
default :class:`AncestralSampler`); ``step`` advances the inner sampler one step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seqdiff.errors import ConfigError
from seqdiff.samplers.ancestral import AncestralSampler
from seqdiff.samplers.base import Condition, Denoiser, Sampler, SamplerState, SamplingContext
from seqdiff.schedules import Schedule
from seqdiff.vocab import VocabSpec


@dataclass(kw_only=True)
class SemiAutoregressiveState(SamplerState):
    """``starts``: the windows' start positions; ``k``: the window being sampled (``len(starts)``
    when done); ``start``: its start position; ``inner``: the inner sampler's state on it."""

    starts: list[int]
    k: int = -1
    start: int = 0
    inner: SamplerState | None = None


class SemiAutoregressiveSampler(Sampler):
    """Slide a ``block_length`` window over a longer sequence, ``stride`` new tokens at a time.

    Args:
        vocab, schedule: of the process (the default inner sampler needs the schedule).
        block_length: the model's training length ``L`` (required; a run gives its
            ``data.seq_len`` when the config leaves it unset).
        stride: new tokens per window after the first; default ``L // 2``.
        inner: the sampler run inside each window; default an :class:`AncestralSampler`
            built from ``num_steps``, ``cache``, ``greedy_final``, ``temperature``, ``top_p``.
    """

    @classmethod
    def context_defaults(cls, context: SamplingContext) -> dict[str, Any]:
        # the default inner sampler follows the schedule; windows are the trained length
        return {"schedule": context.schedule, "block_length": context.trained_length}

    def __init__(
        self,
        vocab: VocabSpec,
        schedule: Schedule | None = None,
        *,
        block_length: int | None = None,
        stride: int | None = None,
        inner: Sampler | None = None,
        num_steps: int = 128,
        cache: bool = True,
        greedy_final: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
    ) -> None:
        super().__init__(vocab)
        if block_length is not None and block_length < 1:
            raise ConfigError(f"sampler.block_length must be >= 1, got {block_length}")
        self.block_length = None if block_length is None else int(block_length)
        if stride is not None and (stride < 1 or (self.block_length is not None and stride > self.block_length)):
            raise ConfigError(f"sampler.stride must be in [1, block_length={self.block_length}], got {stride}")
        self.stride = None if stride is None else int(stride)
        self.inner = inner if inner is not None else AncestralSampler(
            vocab, schedule, num_steps, cache=cache, greedy_final=greedy_final, temperature=temperature, top_p=top_p
        )

    def windows(self, length: int) -> list[int]:
        """Start positions of the windows covering ``length`` tokens."""
        if self.block_length is None:
            raise ConfigError(
                "sampler.block_length: set it to the model's training length (the run's data.seq_len), "
                "e.g. sampler.block_length=256"
            )
        L = self.block_length
        if length <= L:
            return [0]
        stride = self.stride or max(1, L // 2)
        starts = list(range(0, length - L + 1, stride))
        if starts[-1] != length - L:
            starts.append(length - L)
        return starts

    def window(self, length: int) -> int:
        return length if self.block_length is None else min(length, self.block_length)

    # ------------------------------------------------------------------ loop
    def init_state(self, state: SamplerState) -> SemiAutoregressiveState:
        out = SemiAutoregressiveState.extend(state, starts=self.windows(state.x.shape[1]))
        self._next_window(out)
        return out

    def _next_window(self, state: SemiAutoregressiveState) -> None:
        """Start the inner sampler on the next window that has anything to generate."""
        starts, N = state.starts, state.x.shape[1]
        width = min(self.block_length, N)
        k = state.k + 1
        while k < len(starts):
            s = starts[k]
            x, valid = state.x[:, s : s + width], state.valid[:, s : s + width]
            # Everything already decided (the caller's fixed tokens and earlier windows'
            # output) is fixed here; only the still-masked real positions are sampled.
            fixed = (x != self.vocab.mask_id) & valid
            inner = self.inner.start(x.shape[0], width, Condition(x.clone(), fixed, valid.clone()),
                                     generator=state.generator, device=x.device)
            if not inner.done:
                state.k, state.start, state.inner = k, s, inner
                return
            k += 1
        state.k = k
        state.done = True

    def step(self, state: SemiAutoregressiveState, denoiser: Denoiser) -> SemiAutoregressiveState:
        inner, s = state.inner, state.start
        before = inner.nfe.clone()
        inner = self.inner.step(inner, denoiser)
        state.inner = inner
        state.x[:, s : s + inner.x.shape[1]] = inner.x
        state.nfe += inner.nfe - before
        state.calls += 1
        state.step += 1
        if inner.done:
            self._next_window(state)
        return state
