"""Training data from a :class:`MarkovSource`, with the exact answers beside it."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from seqdiff_recipes.synthetic.exact import ExactScorer
from seqdiff_recipes.synthetic.markov import MarkovSource
from seqdiff_recipes.windows import WindowData
from seqdiff.utils.seeding import generator

LN2 = math.log(2.0)


class MarkovData(WindowData):
    """Records sampled from a seeded Markov source over some of the domain's symbols.

    Args:
        domain: a domain with ``ids`` (symbol -> id) and ``vocab``.
        symbols: the source's alphabet, a subset of the domain's (``"ACGT"`` for DNA).
        order, concentration, motifs, motif_strength: see :class:`MarkovSource`;
            motifs are strings over ``symbols``.
        source_seed: fixes the chain itself (the ground truth).
        seq_len: training/eval window length.
        train_tokens, valid_tokens, test_tokens: corpus sizes.
        record_length: tokens per independent chain (a "chromosome").
        seed: seeds training-window placement.
    """

    def __init__(
        self,
        domain,
        symbols: str = "ACGT",
        order: int = 3,
        concentration: float = 0.5,
        motifs: Sequence[str] = (),
        motif_strength: float = 0.9,
        source_seed: int = 1234,
        seq_len: int = 64,
        train_tokens: int = 2_097_152,
        valid_tokens: int = 65_536,
        test_tokens: int = 65_536,
        record_length: int = 4096,
        seed: int = 0,
    ) -> None:
        lut = {c: i for i, c in enumerate(symbols)}
        bad = [m for m in motifs if any(c not in lut for c in m)]
        if bad:
            raise ValueError(f"MarkovData: motifs {bad} use symbols outside {symbols!r}")
        self.source = MarkovSource(
            len(symbols), order, source_seed, concentration, [[lut[c] for c in m] for m in motifs], motif_strength
        )
        self.symbols = symbols
        self.motifs = list(motifs)
        self.exact = ExactScorer(self.source, {m: [lut[c] for c in m] for m in motifs}, seed=source_seed)
        self.to_domain = torch.tensor([domain.ids[c] for c in symbols], dtype=torch.long)
        self.from_domain = torch.full((domain.vocab.size,), -1, dtype=torch.long)
        self.from_domain[self.to_domain] = torch.arange(len(symbols))
        splits = {}
        for i, (name, n) in enumerate((("train", train_tokens), ("valid", valid_tokens), ("test", test_tokens))):
            chains = max(1, math.ceil(n / record_length))
            x = self.source.sample(chains, record_length, generator(source_seed, 1 + i))
            splits[name] = list(self.to_domain[x])
        super().__init__(splits, seq_len, seed=seed, pad_id=domain.vocab.pad_id)

    def reference(self) -> dict:
        """The exact targets: entropy rate and per-token entropy of a window."""
        h = self.source.entropy_rate()
        return {
            "entropy_rate_bits": h / LN2,
            "window_entropy_bits": self.source.window_entropy(self.seq_len) / LN2,
            "order": self.source.k,
        }

    def true_nll_bits(self, tokens: Tensor) -> Tensor:
        """Per-token NLL (bits) of each row under the true source; ``inf`` for rows
        containing symbols the source never emits."""
        sym = self.from_domain[tokens.cpu().long()]
        out = torch.full((tokens.shape[0],), math.inf, dtype=torch.float64)
        ok = (sym >= 0).all(1)
        if ok.any():
            out[ok] = -self.source.log_prob(sym[ok]) / (tokens.shape[1] * LN2)
        return out

    def score_samples(self, tokens: Tensor) -> dict:
        """Oracle sample quality, exact wherever the chain's law allows (see
        :mod:`seqdiff_recipes.synthetic.exact`): the samples' NLL under the true source
        (the analogue of generative perplexity with a perfect judge) read against the
        exact window entropy, k-mer law divergences with their exact-sample floors,
        planted-motif rates against the chain's, and confidence bounds on the entropy of
        the sampling law. Rows holding symbols the source never emits are counted and
        left out of everything else."""
        nll = self.true_nll_bits(tokens)
        finite = torch.isfinite(nll)
        out: dict = {
            "sample_true_nll_bits": float(nll[finite].mean()) if finite.any() else math.inf,
            "samples_with_foreign_symbols": int((~finite).sum()),
        }
        sym = self.from_domain[tokens.cpu().long()][finite]
        out.update(self.exact.score(sym, nll[finite]))
        return out
