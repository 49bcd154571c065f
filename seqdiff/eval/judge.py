"""Generative perplexity: how likely an autoregressive judge finds generated samples.

The judge is a seqdiff AR run (:class:`SeqdiffJudge`, e.g. the matched AR baseline
trained on the same corpus) or any object with the same three methods, such as the judge
registered as ``hf_causal_lm`` (:mod:`seqdiff.registry`; the text recipe's
``seqdiff_recipes.text.metrics.HFCausalJudge``) for a local Hugging Face causal LM.

* **Retokenization.** When the judge's vocabulary is the samples' own, the tokens are
  scored as they are. Otherwise each sample is decoded to text with the samples' domain
  and encoded with the judge's (MDLM decodes with its tokenizer and re-encodes with
  GPT-2's). Document separators survive: runs between ``eos_id`` tokens are converted
  separately and joined by the judge's own EOS when both domains have one (BOS tokens
  are dropped: the judge starts from its own context). A sample the
  judge cannot encode (e.g. a character outside a character-level judge's alphabet) is
  counted in ``unscorable`` and left out.
* **Length.** A judge sequence longer than the judge's context is scored in
  consecutive chunks, each from an empty context (as MDLM does). Every judge token is
  scored, EOS separators included (MDLM's weights drop the EOS tokens after the first).
* **Entropy beside it, always.** Lowering the sampling temperature (MDLM's float32
  Gumbel draws did it by accident) lowers generative perplexity together with
  diversity; the per-sample token entropy of the samples exposes that.

The NLL goes through :func:`seqdiff.eval.likelihood.evaluate_likelihood`, the same code
as held-out likelihood, so it comes with the same 95% interval.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Protocol, Sequence

import torch
from torch import Tensor

from seqdiff.domains import Domain
from seqdiff.errors import ConfigError, DataError
from seqdiff.eval.likelihood import evaluate_likelihood, ratio_ci
from seqdiff.processes.autoregressive import AutoregressiveProcess
from seqdiff.eval.samples import per_sequence_entropy_bits, unigram_entropy_bits

if TYPE_CHECKING:
    from seqdiff.run import Run

LN2 = math.log(2.0)


class Judge(Protocol):
    name: str

    def tokenize(self, samples: Tensor, sample_domain: Domain) -> tuple[list[list[int] | None], bool]:
        """Judge token ids per sample (None: cannot be encoded) and whether text was re-encoded."""

    def score(self, token_lists: Sequence[list[int]]) -> tuple[Tensor, Tensor]:
        """Per-sample NLL (nats, float64) and scored-token counts."""

    def features(self, token_lists: Sequence[list[int]]) -> Tensor:
        """One feature vector per sample ``[N, D]`` (for MAUVE / Vendi)."""


@dataclass
class JudgeResult:
    judge: str
    gen_ppl: float
    gen_ppl_ci95: tuple[float, float]
    nats_per_token: float
    nats_ci95: float
    num_samples: int
    num_tokens: int
    unscorable: int
    retokenized: bool
    mean_sequence_entropy_bits: float  # bd3lms/DUO's "entropy": of each sample's own token histogram
    unigram_entropy_bits: float  # of all samples' tokens pooled

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        lo, hi = self.gen_ppl_ci95
        s = (f"gen-PPL {self.gen_ppl:.2f} (95% CI {lo:.2f}-{hi:.2f}) under {self.judge} | "
             f"entropy {self.mean_sequence_entropy_bits:.3f} bits/sample-token histogram "
             f"(pooled {self.unigram_entropy_bits:.3f}) | {self.num_samples} samples, {self.num_tokens} judge tokens")
        if self.retokenized:
            s += ", retokenized"
        if self.unscorable:
            s += f", {self.unscorable} unscorable"
        return s


def split_on(ids: list[int], sep: int | None) -> list[list[int]]:
    if sep is None:
        return [ids]
    out, cur = [], []
    for i in ids:
        if i == sep:
            out.append(cur)
            cur = []
        else:
            cur.append(i)
    out.append(cur)
    return out


class JudgeEncoder(Protocol):
    """What :func:`retokenize` encodes with: a judge's domain (a :class:`~seqdiff.domains.Domain`)
    or a judge that tokenises for itself (``seqdiff_recipes.text.metrics.HFCausalJudge``)."""

    eos_id: int | None

    def encode(self, text: str, *, where: str = "input") -> list[int]: ...


def retokenize(samples: Tensor, sample_domain: Domain, judge_domain: JudgeEncoder, *,
               drop: Sequence[int] = ()) -> list[list[int] | None]:
    """Decode each row with ``sample_domain``, encode with ``judge_domain`` (EOS-aware)."""
    s_eos, j_eos = sample_domain.eos_id, judge_domain.eos_id
    sep = s_eos if j_eos is not None else None
    # A BOS inside a sample is a document start: the judge supplies its own context start.
    drop = {*drop, *([sample_domain.bos_id] if sample_domain.bos_id is not None else [])} - {sep}
    out: list[list[int] | None] = []
    for b, row in enumerate(samples.tolist()):
        row = [i for i in row if i not in drop]
        ids: list[int] = []
        try:
            for k, piece in enumerate(split_on(row, sep)):
                if k:
                    ids.append(j_eos)
                ids.extend(judge_domain.encode(sample_domain.decode(piece), where=f"sample {b}"))
        except DataError:
            out.append(None)
            continue
        out.append(ids)
    return out


class SeqdiffJudge:
    """A seqdiff autoregressive checkpoint as the judge.

    Args:
        experiment: a loaded run (:func:`seqdiff.load`) whose process is autoregressive.
        max_length: context of the judge; default its training length (``data.seq_len``).
        batch_size: sequences per forward pass.
    """

    def __init__(self, experiment: "Run", *, max_length: int | None = None, batch_size: int = 32) -> None:
        where = experiment.checkpoint.path if experiment.checkpoint is not None else None
        if not isinstance(experiment.process, AutoregressiveProcess):
            raise ConfigError(f"judge: {where or 'the run'} is a {experiment.process.kind} model; "
                              "generative perplexity needs an autoregressive run")
        self.exp = experiment
        self.domain = experiment.domain
        self.max_length = int(max_length or experiment.default_length())
        self.batch_size = batch_size
        self.name = f"seqdiff AR {where or ''}".strip()

    @classmethod
    def from_path(cls, path: str, *, device=None, **kw) -> "SeqdiffJudge":
        from seqdiff.run import load

        return cls(load(path, device=device), **kw)

    def tokenize(self, samples: Tensor, sample_domain: Domain) -> tuple[list[list[int] | None], bool]:
        v = self.domain.vocab
        drop = [sample_domain.vocab.pad_id]
        if sample_domain.vocab == v:
            return [[i for i in row if i not in drop] for row in samples.tolist()], False
        return retokenize(samples, sample_domain, self.domain, drop=drop), True

    def _rows(self, token_lists: Sequence[list[int]]) -> tuple[Tensor, Tensor, Tensor]:
        """Chunks of at most ``max_length`` as padded rows, and each chunk's sample index."""
        L, pad = self.max_length, self.domain.vocab.pad_id
        chunks, owner = [], []
        for i, ids in enumerate(token_lists):
            for s in range(0, len(ids), L):
                chunks.append(ids[s : s + L])
                owner.append(i)
        width = max((len(c) for c in chunks), default=0)
        x = torch.full((len(chunks), width), pad, dtype=torch.long)
        valid = torch.zeros((len(chunks), width), dtype=torch.bool)
        for r, c in enumerate(chunks):
            x[r, : len(c)] = torch.tensor(c, dtype=torch.long)
            valid[r, : len(c)] = True
        return x, valid, torch.tensor(owner, dtype=torch.long)

    def score(self, token_lists: Sequence[list[int]]) -> tuple[Tensor, Tensor]:
        x, valid, owner = self._rows(token_lists)
        n = len(token_lists)
        if len(x) == 0:
            return torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.long)
        batches = [(x[i : i + self.batch_size], valid[i : i + self.batch_size]) for i in range(0, len(x), self.batch_size)]
        _, nll, count = evaluate_likelihood(self.exp.model, self.exp.process, batches)
        nats = torch.zeros(n, dtype=torch.float64).index_add(0, owner, nll.double())
        toks = torch.zeros(n, dtype=torch.long).index_add(0, owner, count.long())
        return nats, toks

    @torch.no_grad()
    def features(self, token_lists: Sequence[list[int]]) -> Tensor:
        """Mean final hidden state over each sample's first chunk (causal, so each position
        has read its prefix)."""
        model, proc = self.exp.model, self.exp.process
        x, valid, owner = self._rows([ids[: self.max_length] for ids in token_lists])
        device = next(model.parameters()).device
        out = []
        was = model.training
        model.eval()
        try:
            for i in range(0, len(x), self.batch_size):
                xb, vb = x[i : i + self.batch_size].to(device), valid[i : i + self.batch_size].to(device)
                h = model.features(proc.shift_right(xb), None, vb).float()
                out.append(((h * vb.unsqueeze(-1)).sum(1) / vb.sum(1, keepdim=True).clamp(min=1)).cpu())
        finally:
            model.train(was)
        return torch.cat(out) if out else torch.zeros(0, 1)


def generative_perplexity(judge: Judge, samples: Tensor, sample_domain: Domain) -> tuple[JudgeResult, list[list[int] | None]]:
    """Score ``samples`` (ids in ``sample_domain``) under ``judge``; also returns the judge tokens."""
    token_lists, retok = judge.tokenize(samples, sample_domain)
    keep = [i for i, t in enumerate(token_lists) if t]
    pad = sample_domain.vocab.pad_id
    rows = [r[r != pad] for r in samples.cpu()]
    ent = per_sequence_entropy_bits_list(rows)
    pooled = unigram_entropy_bits(torch.cat(rows)) if rows else 0.0
    if not keep:
        raise DataError(f"judge: none of the {len(token_lists)} samples could be encoded by {judge.name}")
    nats, toks = judge.score([token_lists[i] for i in keep])
    R, ci = ratio_ci(nats, toks.double())
    res = JudgeResult(
        judge=judge.name,
        gen_ppl=math.exp(R),
        gen_ppl_ci95=(math.exp(R - ci), math.exp(R + ci)) if math.isfinite(ci) else (0.0, math.inf),
        nats_per_token=R,
        nats_ci95=ci,
        num_samples=len(keep),
        num_tokens=int(toks.sum()),
        unscorable=len(token_lists) - len(keep),
        retokenized=retok,
        mean_sequence_entropy_bits=ent,
        unigram_entropy_bits=pooled,
    )
    return res, token_lists


def per_sequence_entropy_bits_list(rows: Sequence[Tensor]) -> float:
    """Mean over samples of the entropy of each sample's token histogram (rows may differ in length)."""
    vals = [float(per_sequence_entropy_bits(r.unsqueeze(0))[0]) for r in rows if r.numel()]
    return sum(vals) / len(vals) if vals else 0.0


def load_judge(path: str, *, device=None, batch_size: int = 32, hf_judge: str = "hf_causal_lm") -> Judge:
    """A seqdiff AR run/checkpoint, or a local Hugging Face causal-LM directory.

    The HF judge is the one an installed package registers as ``hf_judge`` in the
    ``seqdiff.judges`` entry point group (the text recipe registers ``hf_causal_lm``; the
    core never imports transformers).
    """
    from pathlib import Path

    from seqdiff.io.checkpoint import is_hf_model_dir
    from seqdiff.registry import load

    p = Path(path).expanduser()
    if is_hf_model_dir(p):  # a seqdiff checkpoint's config.json has no model_type
        factory = load("seqdiff.judges", hf_judge, section=f"eval.judge={p} (a Hugging Face model directory)")
        return factory(str(p), device=device, batch_size=batch_size)
    return SeqdiffJudge.from_path(str(p), device=device, batch_size=batch_size)
