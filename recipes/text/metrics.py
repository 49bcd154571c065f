"""Text sample metrics and a Hugging Face causal-LM judge.

:func:`text_sample_stats` is what ``seqdiff eval`` prints for text samples: distinct-n,
self-BLEU, per-sample token entropy and length statistics (segments between ``[EOS]``
tokens), each next to the same number for as many real held-out rows, so a
reader can tell "diverse like data" from "diverse because random".

:class:`HFCausalJudge` scores samples under any local ``AutoModelForCausalLM``
directory (GPT-2 and the like), implementing :class:`seqdiff.eval.judge.Judge`: samples
are decoded with the run's tokenizer and re-encoded with the judge's. Unlike MDLM (which
leaves each chunk's first token unscored), a ``bos_token`` is prepended when the judge
has one, so every token of the sample is scored.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor

from seqdiff.errors import ConfigError
from seqdiff.eval.diversity import distinct_summary, self_bleu, strip_ids
from seqdiff.eval.judge import split_on
from seqdiff.eval.samples import per_sequence_entropy_bits

LN2 = math.log(2.0)


def _segment_lengths(rows: list[list[int]], eos: int | None) -> list[int]:
    """Lengths of complete segments: those with an [EOS] on both sides inside a row."""
    if eos is None:
        return []
    out = []
    for r in rows:
        pieces = split_on(r, eos)
        out.extend(len(p) for p in pieces[1:-1])
    return out


def _stats(rows: list[list[int]], eos: int | None, decode) -> dict[str, float]:
    d: dict[str, float] = distinct_summary(rows)
    if len(rows) >= 2:
        d["self_bleu"] = self_bleu(rows, max_samples=64)
    ent = [float(per_sequence_entropy_bits(torch.tensor(r).unsqueeze(0))[0]) for r in rows if r]
    d["mean_sequence_entropy_bits"] = sum(ent) / len(ent) if ent else 0.0
    d["chars_per_sample"] = sum(len(decode(r)) for r in rows) / max(1, len(rows))
    if eos is not None:
        d["eos_per_sample"] = sum(r.count(eos) for r in rows) / max(1, len(rows))
        seg = _segment_lengths(rows, eos)
        d["complete_segments"] = len(seg)
        if seg:
            s = sorted(seg)
            d["segment_tokens_mean"] = sum(s) / len(s)
            d["segment_tokens_median"] = float(s[len(s) // 2])
    return d


def text_sample_stats(data: Any, tokens: Tensor) -> dict:
    """``{metric: {"samples": value, "data": value on as many real held-out rows}}``."""
    dom = data.domain
    pad = dom.vocab.pad_id
    eos = dom.eos_id if getattr(data, "eos", False) or getattr(data, "row_specials", False) else None
    samples = strip_ids(tokens, [pad])
    mine = _stats(samples, eos, dom.decode)
    real = None
    for split in ("test", "valid", "train"):
        try:
            x, valid = data.real_rows(split, len(samples))
            real = [[int(v) for v in row[m].tolist()] for row, m in zip(x, valid)]
            break
        except Exception:  # noqa: BLE001 - an empty split just falls through to the next one
            continue
    theirs = _stats(real, eos, dom.decode) if real else {}
    return {k: {"samples": v, **({"data": theirs[k]} if k in theirs else {})} for k, v in mine.items()}


# ---------------------------------------------------------------------- HF judge
class HFCausalJudge:
    """Any local Hugging Face causal LM as a generative-perplexity judge.

    Args:
        path: a directory with ``config.json``, weights and tokenizer files
            (``save_pretrained`` output). Nothing is downloaded.
        device: torch device; batch_size: chunks per forward pass.
        max_length: context per chunk; default the model's position limit.
    """

    def __init__(self, path: str, *, device=None, batch_size: int = 8, max_length: int | None = None) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        d = Path(path).expanduser()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(d), local_files_only=True)
            self.model = AutoModelForCausalLM.from_pretrained(str(d), local_files_only=True)
        except (OSError, ValueError) as e:
            raise ConfigError(f"eval.judge: cannot load a Hugging Face causal LM from {d} ({' '.join(str(e).split())[:240]})") from None
        self.model.eval()
        if device is not None:
            self.model.to(device)
        cfg = self.model.config
        limit = getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None) or 1024
        self.max_length = int(max_length or limit)
        self.batch_size = batch_size
        self.bos = self.tokenizer.bos_token_id
        self.eos = self.tokenizer.eos_token_id
        self.name = f"HF {cfg.model_type} {d}"
        self.eos_id = self.eos  # lets seqdiff.eval.judge.retokenize keep document separators

    def encode(self, text: str, *, where: str = "sample") -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def tokenize(self, samples: Tensor, sample_domain: Any) -> tuple[list[list[int] | None], bool]:
        from seqdiff.eval.judge import retokenize

        return retokenize(samples, sample_domain, self, drop=[sample_domain.vocab.pad_id]), True

    def _chunks(self, token_lists: Sequence[list[int]], first_only: bool = False):
        step = self.max_length - (1 if self.bos is not None else 0)
        for i, ids in enumerate(token_lists):
            starts = range(0, len(ids), step) if not first_only else [0]
            for s in starts:
                piece = ids[s : s + step]
                if piece:
                    yield i, ([self.bos] if self.bos is not None else []) + piece

    def _batches(self, token_lists, first_only=False):
        items = list(self._chunks(token_lists, first_only))
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        for b in range(0, len(items), self.batch_size):
            part = items[b : b + self.batch_size]
            width = max(len(c) for _, c in part)
            x = torch.full((len(part), width), pad, dtype=torch.long)
            m = torch.zeros((len(part), width), dtype=torch.long)
            for r, (_, c) in enumerate(part):
                x[r, : len(c)] = torch.tensor(c)
                m[r, : len(c)] = 1
            yield torch.tensor([i for i, _ in part]), x, m

    @torch.no_grad()
    def score(self, token_lists: Sequence[list[int]]) -> tuple[Tensor, Tensor]:
        n = len(token_lists)
        nats = torch.zeros(n, dtype=torch.float64)
        toks = torch.zeros(n, dtype=torch.long)
        dev = next(self.model.parameters()).device
        for owner, x, m in self._batches(token_lists):
            logits = self.model(input_ids=x.to(dev), attention_mask=m.to(dev)).logits.double()
            logp = torch.log_softmax(logits[:, :-1], dim=-1)
            tgt, tm = x[:, 1:].to(dev), m[:, 1:].to(dev).bool()
            nll = -(logp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)) * tm
            nats.index_add_(0, owner, nll.sum(1).cpu())
            toks.index_add_(0, owner, tm.sum(1).cpu())
        return nats, toks

    @torch.no_grad()
    def features(self, token_lists: Sequence[list[int]]) -> Tensor:
        """Mean last-layer hidden state over each sample's first chunk."""
        dev = next(self.model.parameters()).device
        out = []
        for _, x, m in self._batches(token_lists, first_only=True):
            h = self.model(input_ids=x.to(dev), attention_mask=m.to(dev), output_hidden_states=True).hidden_states[-1]
            mm = m.to(dev).unsqueeze(-1).to(h.dtype)
            out.append(((h * mm).sum(1) / mm.sum(1).clamp(min=1)).float().cpu())
        return torch.cat(out)
