"""The text domain: a tokenizer's ids as the diffusion vocabulary.

``configs/domain/text_*.yaml`` pick the tokenizer:

* ``char`` / ``bpe`` / ``wordpiece``: trained on the training split of
  ``train_corpus`` (the data's own corpus settings, by interpolation), or loaded from
  ``path`` when a tokenizer was saved there (``seqdiff tokenizer train``, or an earlier
  run with the same ``path``, which saves it there after training);
* ``byte``: the 256 byte values, nothing to train;
* ``gpt2`` / ``bert`` / ``hf``: published files in the directory ``path``.

Ids are the tokenizer's own, so a model built from the same HF tokenizer (e.g.
``backbone=hf_mlm``) agrees on them; ``[MASK]``/``[PAD]`` are appended when the tokenizer
lacks them (GPT-2). Only mask, pad and the tokenizer's other control tokens are never
generated; UNK may occur in data, and BOS/EOS when the data inserts them (``data.bos`` /
``data.eos``, passed to ``bos``/``eos`` here).

Every checkpoint stores the tokenizer under ``artifacts/`` (:meth:`save_artifacts`) and
:func:`seqdiff.load` passes that folder back as ``artifacts_dir``, so sampling and
evaluation never need the original files. If those files are still there and now
give a different tokenizer, loading stops with a one-line :class:`CheckpointError`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Iterable

from seqdiff_recipes.text.corpus import CorpusSpec, read_documents, split_corpus
from seqdiff_recipes.text.tokenizers import (
    KINDS, TextTokenizer, is_saved, load_pretrained, same_tokenizer, train_tokenizer,
)
from seqdiff.domains import Domain
from seqdiff.errors import CheckpointError, ConfigError
from seqdiff.vocab import VocabSpec

PRETRAINED = ("gpt2", "bert", "hf")


class TextDomain(Domain):
    """Tokenizer and vocabulary for text (a :class:`~seqdiff.domains.Domain` with artifacts:
    the tokenizer is saved into every checkpoint and read back from ``artifacts_dir``).

    Args:
        tokenizer: one of ``char, byte, bpe, wordpiece, gpt2, bert, hf``.
        path: tokenizer directory (required for gpt2/bert/hf; for trainable kinds the
            place it is loaded from if saved there, else saved to after training).
        vocab_size, min_frequency: BPE / WordPiece training.
        lowercase: WordPiece/BPE training normalisation; for ``bert``, overrides the
            tokenizer's ``do_lower_case`` (null: the tokenizer's default).
        chars: for ``char``, a fixed alphabet instead of the corpus's characters.
        train_corpus: corpus settings (``data.corpus``) to train on.
        name: shown in logs; default ``text-<tokenizer>``.
        bos, eos: whether the data contains [BOS]/[EOS] (then the model may generate them;
            otherwise they are never generated). The configs set them from ``data.bos``/``data.eos``.
        artifacts_dir: a checkpoint's saved tokenizer (passed by :func:`seqdiff.load`).
    """

    uses_artifacts = True

    def __init__(
        self,
        tokenizer: str = "char",
        path: str | None = None,
        vocab_size: int | None = None,
        min_frequency: int = 2,
        lowercase: bool | None = None,
        chars: str | None = None,
        train_corpus: dict[str, Any] | None = None,
        name: str | None = None,
        bos: bool = True,
        eos: bool = True,
        artifacts_dir: str | None = None,
    ) -> None:
        if tokenizer not in KINDS:
            raise ConfigError(f"domain.tokenizer must be one of {KINDS}, got {tokenizer!r}")
        self.kind = tokenizer
        self.name = name or f"text-{tokenizer}"
        self._settings = dict(vocab_size=vocab_size, min_frequency=min_frequency, lowercase=lowercase, chars=chars)
        if artifacts_dir is not None and is_saved(artifacts_dir):
            self.tokenizer = self._from_checkpoint(Path(artifacts_dir), path)
        else:
            self.tokenizer = self._build(path, train_corpus)
        tok = self.tokenizer
        # BOS/EOS are generatable only if the data inserts them (the yaml files take
        # data.bos/data.eos); a model should not spend probability on ids it never sees.
        keep = {tok.id("unk")} | ({tok.id("bos")} if bos else set()) | ({tok.id("eos")} if eos else set())
        self.vocab = VocabSpec(
            size=len(tok),
            mask_id=tok.id("mask"),
            pad_id=tok.id("pad"),
            never_generate=tuple(i for i in tok.special_ids if i not in keep),
            tokens=tuple(tok.tokens),
        )
        self.ids = {t: i for i, t in enumerate(tok.tokens)}

    # ------------------------------------------------------------------ construction
    def _build(self, path: str | None, train_corpus: dict | None) -> TextTokenizer:
        if self.kind in PRETRAINED:
            if not path:
                raise ConfigError(f"domain.path: the {self.kind} tokenizer needs its directory (domain.path=DIR)")
            return load_pretrained(self.kind, path, lowercase=self._settings["lowercase"])
        if is_saved(path):
            tok = TextTokenizer.load(path)
            if tok.kind != self.kind:
                raise ConfigError(f"{path}: holds a {tok.kind} tokenizer, but domain.tokenizer={self.kind}")
            return tok
        if self.kind == "byte" or (self.kind == "char" and self._settings["chars"]):
            tok = train_tokenizer(self.kind, [], chars=self._settings["chars"])  # fixed alphabets: nothing to learn
        else:
            tok = self._train(train_corpus)
        if path:
            try:
                tok.save(path)
            except OSError as e:
                raise ConfigError(f"domain.path: cannot save the trained tokenizer to {path} ({e.strerror})") from None
        return tok

    def _train(self, train_corpus: dict | None) -> TextTokenizer:
        if not train_corpus:
            raise ConfigError(f"domain: the {self.kind} tokenizer must be trained; give domain.train_corpus "
                              "(the text experiments set it to ${data.corpus}) or a saved tokenizer in domain.path")
        spec = CorpusSpec.from_config(train_corpus)
        t0 = time.perf_counter()
        # Characters: the whole corpus (as nanoGPT), so held-out text always encodes.
        # Merges / word pieces: the training split only, so test text is never seen.
        docs = read_documents(spec) if self.kind == "char" else split_corpus(spec).train
        s = self._settings
        tok = train_tokenizer(self.kind, (d.text for d in docs), vocab_size=s["vocab_size"],
                              min_frequency=s["min_frequency"], lowercase=bool(s["lowercase"]), chars=s["chars"])
        print(f"tokenizer: trained {self.kind} ({len(tok)} ids) on {sum(len(d.text) for d in docs):,} characters "
              f"in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        return tok

    def _from_checkpoint(self, art: Path, path: str | None) -> TextTokenizer:
        tok = TextTokenizer.load(art)
        if tok.kind != self.kind:
            raise CheckpointError(f"{art}: the checkpoint's tokenizer is {tok.kind}, the config says {self.kind}")
        configured = None
        if path and Path(path).expanduser().is_dir():
            if self.kind in PRETRAINED:
                try:
                    configured = load_pretrained(self.kind, path, lowercase=self._settings["lowercase"])
                except ConfigError:
                    configured = None  # the original files are gone or changed shape: the checkpoint's copy rules
            elif is_saved(path):
                configured = TextTokenizer.load(path)
        if configured is not None:
            diff = same_tokenizer(tok, configured)
            if diff:
                raise CheckpointError(
                    f"{art}: the checkpoint's tokenizer differs from the configured one at {path} ({diff}); "
                    "the model was trained with the checkpoint's copy"
                )
        return tok

    # ------------------------------------------------------------------ domain contract
    @property
    def bos_id(self) -> int | None:
        return self.tokenizer.id("bos")

    @property
    def eos_id(self) -> int | None:
        return self.tokenizer.id("eos")

    def encode(self, text: str, *, where: str = "input") -> list[int]:
        return self.tokenizer.encode(text, where=where)

    def decode(self, ids: Iterable[int], *, skip_pad: bool = True) -> str:
        pad = self.vocab.pad_id
        return self.tokenizer.decode([int(i) for i in ids if not (skip_pad and int(i) == pad)])

    def save_artifacts(self, directory: str | Path) -> None:
        self.tokenizer.save(directory)

    def describe(self) -> dict:
        return {"name": self.name, "vocab_size": self.vocab.size, **self.tokenizer.describe()}
