r"""A labelled synthetic source: K "species", each its own seeded Markov chain with its own motifs.

Species :math:`y` is a :class:`MarkovSource` (seed ``derive_seed(source_seed, y)``, or with
``shared_chain`` one Dirichlet draw for all, so that species differ only in their planted
motifs: a harder classification), with its own planted motifs; a row is a label drawn from the prior :math:`\pi(y)` and a window of its
chain started from that chain's stationary law, so the window's law is exactly the chain's
(:meth:`MarkovSource.log_prob`). Everything is therefore known in closed form:

.. math::
    p(y \mid x) = \frac{\pi(y)\, p_y(x)}{\sum_{y'} \pi(y')\, p_{y'}(x)}, \qquad
    p(x) = \sum_y \pi(y)\, p_y(x),

the exact posterior (the Bayes classifier of a sample's species) and the exact mixture, the
law an unconditional model of this source should learn. Training rows are fresh windows
drawn for every step (a pure function of ``(seed, step)``: the global batch is drawn and
each rank takes its slice); evaluation rows are a fixed draw per split, species in turn.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import torch
from torch import Tensor

from seqdiff.data import Batch, DataSource
from seqdiff.labels import LabelSpec
from seqdiff.utils.seeding import derive_seed, generator
from seqdiff_recipes.synthetic.markov import MarkovSource

LN2 = math.log(2.0)
#: motifs species ``y`` plants by default: ``DEFAULT_MOTIFS[y % 4]``
DEFAULT_MOTIFS = (["TATAAT"], ["GGATCC"], ["CACGTG"], ["GCGCGC"])
SPLITS = ("train", "valid", "test")


class SpeciesData(DataSource):
    """``len(species)`` labelled Markov sources over ``symbols`` (one label field, ``label_field``).

    Args:
        domain: a domain with ``ids`` (symbol -> id) and ``vocab``.
        species: the label names, one chain each.
        motifs: per species, the motifs its chain plants (default :data:`DEFAULT_MOTIFS`).
        prior: per-species probability of a row (default uniform).
        order, concentration, motif_strength: of every chain (:class:`MarkovSource`).
        source_seed: fixes the chains (the ground truth).
        shared_chain: every species starts from the same transition matrix and differs only
            in its planted motifs (default: an independent chain each).
        seq_len: window length; eval_sequences: rows per evaluation split.
        label_field: the name of the label field (``species``).
        seed: seeds the training rows.
    """

    unit = "base"

    def __init__(
        self,
        domain,
        species: Sequence[str] = ("alpha", "beta"),
        motifs: Sequence[Sequence[str]] | None = None,
        prior: Sequence[float] | None = None,
        symbols: str = "ACGT",
        order: int = 3,
        concentration: float = 0.5,
        motif_strength: float = 0.9,
        source_seed: int = 1234,
        shared_chain: bool = False,
        seq_len: int = 64,
        eval_sequences: int = 512,
        label_field: str = "species",
        seed: int = 0,
    ) -> None:
        species = [str(s) for s in species]
        if len(species) < 1:
            raise ValueError("SpeciesData: give at least one species")
        motifs = [list(m) for m in motifs] if motifs is not None else [DEFAULT_MOTIFS[k % 4] for k in range(len(species))]
        if len(motifs) != len(species):
            raise ValueError(f"SpeciesData: {len(motifs)} motif lists for {len(species)} species")
        lut = {c: i for i, c in enumerate(symbols)}
        for ms in motifs:
            bad = [m for m in ms if any(c not in lut for c in m)]
            if bad:
                raise ValueError(f"SpeciesData: motifs {bad} use symbols outside {symbols!r}")
        prior = [1.0 / len(species)] * len(species) if prior is None else [float(p) for p in prior]
        if len(prior) != len(species) or any(p <= 0 for p in prior) or abs(sum(prior) - 1.0) > 1e-9:
            raise ValueError(f"SpeciesData: prior must be {len(species)} positive numbers summing to 1, got {prior}")
        self.species, self.motifs, self.symbols = species, motifs, symbols
        self.prior = torch.tensor(prior, dtype=torch.float64)
        self.sources = [
            MarkovSource(len(symbols), order, source_seed if shared_chain else derive_seed(source_seed, k), concentration,
                         [[lut[c] for c in m] for m in ms], motif_strength)
            for k, ms in enumerate(motifs)
        ]
        self.labels = LabelSpec(((label_field, tuple(species)),))
        self.seq_len, self.seed, self.source_seed = int(seq_len), int(seed), int(source_seed)
        self.eval_sequences = int(eval_sequences)
        self.to_domain = torch.tensor([domain.ids[c] for c in symbols], dtype=torch.long)
        self.from_domain = torch.full((domain.vocab.size,), -1, dtype=torch.long)
        self.from_domain[self.to_domain] = torch.arange(len(symbols))
        self._eval: dict[str, tuple[Tensor, Tensor]] = {}

    # ------------------------------------------------------------------ rows
    def draw(self, labels: Tensor, gen: torch.Generator) -> Tensor:
        """A stationary window of each row's chain, ``[N, seq_len]`` domain ids."""
        x = torch.empty(len(labels), self.seq_len, dtype=torch.long)
        for k, src in enumerate(self.sources):
            rows = (labels == k).nonzero(as_tuple=True)[0]
            if len(rows):
                x[rows] = src.sample(len(rows), self.seq_len, gen)
        return self.to_domain[x]

    def train_batch(self, step: int, batch_size: int, *, rank: int = 0, world_size: int = 1) -> Batch:
        gen = generator(self.seed, int(step), 7)
        total = batch_size * world_size
        y = torch.multinomial(self.prior, total, replacement=True, generator=gen)
        x = self.draw(y, gen)[rank * batch_size : (rank + 1) * batch_size]
        y = y[rank * batch_size : (rank + 1) * batch_size]
        return Batch(x, torch.ones_like(x, dtype=torch.bool), None, y.unsqueeze(1))

    def eval_rows(self, split: str = "valid") -> tuple[Tensor, Tensor]:
        """The split's fixed rows ``(x [N, L], label [N])``, species in turn."""
        if split not in SPLITS:
            raise ValueError(f"SpeciesData: no split {split!r} (have {list(SPLITS)})")
        if split not in self._eval:
            y = torch.arange(self.eval_sequences) % len(self.species)
            self._eval[split] = (self.draw(y, generator(self.source_seed, 100 + SPLITS.index(split))), y)
        return self._eval[split]

    def eval_batches(self, split: str = "valid", batch_size: int = 64, max_sequences: int | None = None) -> Iterator[Batch]:
        x, y = self.eval_rows(split)
        if max_sequences is not None:
            x, y = x[:max_sequences], y[:max_sequences]
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size]
            yield Batch(xb, torch.ones_like(xb, dtype=torch.bool), None, y[i : i + batch_size].unsqueeze(1))

    # ------------------------------------------------------------------ exact answers
    def symbols_of(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """``(symbols [N, L], ok [N])``: rows holding an id no chain emits are not ok."""
        sym = self.from_domain[tokens.cpu().long()]
        ok = (sym >= 0).all(1)
        return sym.clamp(min=0), ok

    def log_likelihoods(self, tokens: Tensor) -> Tensor:
        """Exact :math:`\\log p_y(x)` (nats) of each row under every species, ``[N, K]``
        (``-inf`` for rows with foreign ids)."""
        sym, ok = self.symbols_of(tokens)
        ll = torch.stack([src.log_prob(sym) for src in self.sources], dim=1)
        return ll.masked_fill(~ok.unsqueeze(1), float("-inf"))

    def posterior(self, tokens: Tensor) -> Tensor:
        """The exact posterior :math:`p(y \\mid x)`, ``[N, K]`` (NaN for rows with foreign ids)."""
        lj = self.log_likelihoods(tokens) + torch.log(self.prior)
        return torch.softmax(lj, dim=1)

    def mixture_log_prob(self, tokens: Tensor) -> Tensor:
        """Exact :math:`\\log p(x) = \\log \\sum_y \\pi(y) p_y(x)` (nats) per row."""
        return torch.logsumexp(self.log_likelihoods(tokens) + torch.log(self.prior), dim=1)

    def kmer_law(self, m: int, species: int | None = None) -> Tensor:
        """Exact law of the ``m``-mer at any position: of one species' chain, or the mixture."""
        if species is not None:
            return self.sources[species].kmer_law(m)
        return sum(float(p) * src.kmer_law(m) for p, src in zip(self.prior, self.sources))

    def score_label(self, tokens: Tensor, label: int) -> dict:
        """Exact figures of samples meant to be species ``label``: the Bayes classifier's
        accuracy (argmax of the exact posterior), the mean exact posterior of ``label``, and
        the true NLL under that species' chain (bits/base) beside its entropy rate."""
        sym, ok = self.symbols_of(tokens)
        post = self.posterior(tokens[ok])
        nll = -self.sources[label].log_prob(sym[ok]) / (tokens.shape[1] * LN2)
        return {
            "label_accuracy": float((post.argmax(1) == label).double().mean()) if ok.any() else math.nan,
            "label_posterior": float(post[:, label].mean()) if ok.any() else math.nan,
            "true_nll_bits": float(nll.mean()) if ok.any() else math.inf,
            "entropy_rate_bits": self.sources[label].entropy_rate() / LN2,
            "samples_with_foreign_symbols": int((~ok).sum()),
        }

    def label_prior(self) -> dict[str, Tensor]:
        """The prior the training rows' species are drawn from (exact, not counted)."""
        return {self.labels.field_names[0]: self.prior.clone()}

    def score_labelled_samples(self, tokens: Tensor, label: Tensor) -> dict:
        """:meth:`score_label` of the one field's label."""
        return self.score_label(tokens, int(torch.as_tensor(label).flatten()[0]))

    def reference(self) -> dict:
        rates = [src.entropy_rate() / LN2 for src in self.sources]
        return {"entropy_rate_bits_by_label": dict(zip(self.species, rates)),
                "window_entropy_bits_by_label": {s: src.window_entropy(self.seq_len) / LN2
                                                 for s, src in zip(self.species, self.sources)}}

    def score_samples(self, tokens: Tensor) -> dict:
        """Unconditional samples: the mean exact posterior of each species (against the
        prior, what a model of the mixture should give) and the NLL under the mixture."""
        sym, ok = self.symbols_of(tokens)
        if not ok.any():
            return {"samples_with_foreign_symbols": int((~ok).sum())}
        post = self.posterior(tokens[ok]).mean(0)
        return {
            "mean_posterior": {s: float(p) for s, p in zip(self.species, post)},
            "prior": {s: float(p) for s, p in zip(self.species, self.prior)},
            "mixture_nll_bits": float((-self.mixture_log_prob(tokens[ok]) / (tokens.shape[1] * LN2)).mean()),
            "samples_with_foreign_symbols": int((~ok).sum()),
        }
