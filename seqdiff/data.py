"""The data-source contract: what the trainer and the evaluator read from a domain's data.

A data source is written against this page. It must give fixed-length batches for training
and evaluation; every other capability is an optional hook with a declared, typed default
(the evaluator calls the hook; a source that has nothing to say keeps the default), so the
core never probes an object for attributes.

Training batches are a pure function of ``(step, rank, world_size)`` (the source's own seed
fixed): a resumed run needs only its step counter, and ``world_size`` ranks reading their
slices see exactly the rows one process with the global batch would.

>>> class Ones(DataSource):                                   # doctest: +SKIP
...     seq_len = 8
...     def train_batch(self, step, batch_size, *, rank=0, world_size=1):
...         x = torch.zeros(batch_size, self.seq_len, dtype=torch.long)
...         return Batch(x, torch.ones_like(x, dtype=torch.bool))
...     def eval_batches(self, split="valid", batch_size=64, max_sequences=None):
...         yield self.train_batch(0, 4)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Iterator, NamedTuple, Sequence

from torch import Tensor

from seqdiff.labels import LabelSpec

if TYPE_CHECKING:  # the condition type only; samplers are not imported at run time
    from seqdiff.samplers.base import Condition


class _Tensors(NamedTuple):
    x0: Tensor
    valid: Tensor
    fixed: Tensor | None = None


class Batch(_Tensors):
    """One batch: token ids ``x0 [B, L]``, ``valid [B, L]`` (False: padding or positions that
    are not targets, never attended to) and optionally ``fixed [B, L]``, condition tokens that
    are always visible and never masked or scored (a source sentence, flanks), and
    ``label [B, F]``, the label ids of each row (one column per field of the source's
    :attr:`DataSource.labels`; :mod:`seqdiff.labels`): given, never scored, so a likelihood
    of a labelled batch is the conditional one, :math:`-\\log p(x \\mid y)`.

    It unpacks as the triple ``x0, valid, fixed`` it always was; ``label`` is an attribute
    (None for an unlabelled source), so code that reads three fields keeps working.
    """

    label: Tensor | None = None  # the default of a Batch built without one (e.g. by _replace)

    def __new__(cls, x0: Tensor, valid: Tensor, fixed: Tensor | None = None, label: Tensor | None = None) -> "Batch":
        self = super().__new__(cls, x0, valid, fixed)
        self.label = label
        return self

    def __getnewargs__(self):  # copy / pickle keep the label
        return (self.x0, self.valid, self.fixed, self.label)


class DataSource(ABC):
    """Fixed-length windows of one domain's data, by split (``train``/``valid``/``test``).

    Attributes:
        seq_len: the window length ``L`` (the trained length; samplers default to it).
        unit: what one token is called in reports (``"token"``, ``"base"``, ...).
        labels: the label vocabulary when every batch carries ``label`` ids (species, cell
            type, ...); None (default): the source has no labels. A run trained on a
            labelled source stores it (``label.vocab``) and its backbone embeds the labels.
    """

    seq_len: int
    unit: str = "token"
    labels: LabelSpec | None = None

    @abstractmethod
    def train_batch(self, step: int, batch_size: int, *, rank: int = 0, world_size: int = 1) -> Batch:
        """Rows ``rank * batch_size .. (rank + 1) * batch_size`` of step ``step``'s global batch."""

    @abstractmethod
    def eval_batches(self, split: str = "valid", batch_size: int = 64,
                     max_sequences: int | None = None) -> Iterator[Batch]:
        """The split's evaluation windows, deterministically (the same rows every call)."""

    # ------------------------------------------------------------------ optional hooks
    def reference(self) -> dict:
        """Exact or reference figures the report prints beside the model's (e.g. a synthetic
        source's entropy rate ``entropy_rate_bits`` and ``window_entropy_bits``; which tokens a
        perplexity counts, ``counting``). Default: none."""
        return {}

    def score_samples(self, tokens: Tensor) -> dict:
        """Domain statistics of generated rows ``[N, L]`` (k-mer spectra, the true NLL under a
        known source, ...), a flat dict of numbers or dicts of numbers. Default: none."""
        return {}

    def eval_units(self, split: str, max_sequences: int | None = None) -> tuple[str, Tensor] | None:
        """A second unit to report the likelihood in: ``(name, count per evaluation row)``,
        e.g. characters of document text behind each row of a BPE corpus. The counts are
        those of the rows ``eval_batches(split, ..., max_sequences)`` yields, in its order
        (the report divides each row's NLL by them). Default: none."""
        return None

    def label_prior(self) -> dict[str, Tensor] | None:
        """How often each label occurs in the training rows, ``{field: probabilities [K_f]}``
        (the prior of the report's Bayes classifier of labels, :mod:`seqdiff.eval.labels`);
        None (default): unknown, and the report uses a uniform prior."""
        return None

    def score_labelled_samples(self, tokens: Tensor, label: Tensor) -> dict:
        """Exact figures of rows ``[N, L]`` generated under label ids ``label [F]``, when the
        source knows its labels' laws (a synthetic source: the accuracy of the exact
        posterior's argmax, ``label_accuracy``). Default: none."""
        return {}

    def sample_condition(self, n: int, seed: int = 0) -> "Condition | None":
        """What unconditional samples are conditioned on, if anything (padded data: a row
        length drawn from the data, its leading BOS). Default: nothing."""
        return None


class PairedSource(DataSource):
    """A source of ``source -> target`` pairs: the source is a fixed condition, the target is
    generated (``seqdiff sample condition.source=...``)."""

    @abstractmethod
    def source_condition(self, sources: Sequence[str], num_samples: int = 1, *, target_length: int | None = None,
                         seed: int = 0) -> "Condition":
        """Each source ``num_samples`` times, its target positions free."""

    @abstractmethod
    def decode_target(self, row: Tensor) -> str:
        """The generated target of one row as text."""
