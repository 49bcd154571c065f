"""Any Hugging Face masked LM (BERT, RoBERTa, ...) behind the backbone contract.

This is the backbone of Diffusion-EAGS (RoBERTa-base as a time-agnostic masked
denoiser) and of the DiffusionBERT baseline: load a pretrained ``AutoModelForMaskedLM``
from a local directory (``path``; nothing is downloaded), or build a randomly
initialised one from a config dict (``config: {model_type: bert, hidden_size: ...}``).

The model's token ids are used as they are, so the run's vocabulary must be the
model's: build the domain from the same tokenizer (``domain=text_hf domain.path=DIR``),
and the two agree by construction. That is verified: vocabulary size, the model's
``pad_token_id``, and, when the directory holds tokenizer files, the mask/pad ids and
every token string; any mismatch is a one-line :class:`ConfigError`. A model built
from a config dict takes the run's sizes and pad id.

MLMs have no noise-level input, so ``time_conditioning`` is refused (MDLM's default is
time-agnostic anyway). ``valid`` is passed through, so padding is invisible
(RoBERTa's position ids also skip padding, which is why its pad id must match).
With ``output_mask`` only the selected positions go through the MLM head.

This is the only file of the core that imports ``transformers``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from seqdiff.backbones.base import Backbone, check_inputs, select_outputs
from seqdiff.errors import ConfigError
from seqdiff.vocab import VocabSpec

#: Attribute names of the MLM heads of common architectures (applied to hidden states).
HEAD_NAMES = ("cls", "lm_head", "predictions")


def _short(e: BaseException, n: int = 240) -> str:
    s = " ".join(str(e).split())
    return s if len(s) <= n else s[: n - 3] + "..."


class HFMaskedLM(Backbone):
    """``AutoModelForMaskedLM`` as a seqdiff backbone.

    Args:
        vocab_size: the run's vocabulary size (passed by the experiment builder).
        vocab: the run's :class:`VocabSpec` (passed by the builder), for the id checks.
        path: local directory of a pretrained model (``save_pretrained`` output).
        config: without ``path``, a config dict for a freshly initialised model;
            ``model_type`` (default ``bert``) plus that architecture's fields. Ignored
            when ``path`` is given (the pretrained model's own config is used).
        time_conditioning: must be false (see the module docstring).
        check_ids: verify the model's special ids against ``vocab`` (default true).
    """

    causal = False
    time_conditioning = False

    def __init__(
        self,
        vocab_size: int,
        vocab: VocabSpec | None = None,
        path: str | None = None,
        config: dict[str, Any] | None = None,
        time_conditioning: bool = False,
        check_ids: bool = True,
    ) -> None:
        super().__init__()
        if time_conditioning:
            raise ConfigError(
                "backbone=hf_mlm: time conditioning is not supported (a Hugging Face masked LM has no noise-level "
                "input); set process.time_conditioning=false"
            )
        if path is None and config is None:
            raise ConfigError("backbone=hf_mlm: give backbone.path (a pretrained model directory) "
                              "or backbone.config (a dict for a new model)")
        from transformers import AutoConfig, AutoModelForMaskedLM

        self.vocab_size = int(vocab_size)
        self.source = str(path) if path is not None else "config"
        if path is not None:
            d = Path(path).expanduser()
            if not (d / "config.json").is_file():
                raise ConfigError(f"backbone.path: {d} is not a Hugging Face model directory (no config.json)")
            try:
                self.model = AutoModelForMaskedLM.from_pretrained(str(d), local_files_only=True)
            except (OSError, ValueError) as e:
                raise ConfigError(f"backbone.path: cannot load a masked LM from {d} ({_short(e)})") from None
        else:
            cfg = dict(config)
            model_type = cfg.pop("model_type", "bert")
            for key, want in (("vocab_size", self.vocab_size), ("pad_token_id", None if vocab is None else vocab.pad_id)):
                if want is None:
                    continue
                if cfg.get(key) is not None and int(cfg[key]) != want:
                    raise ConfigError(f"backbone.config.{key}={cfg[key]} but the run's vocabulary needs {want}")
                cfg[key] = want
            try:
                hf_cfg = AutoConfig.for_model(model_type, **cfg)
                self.model = AutoModelForMaskedLM.from_config(hf_cfg)
            except (KeyError, ValueError, TypeError, AssertionError) as e:  # torch asserts on bad padding_idx
                raise ConfigError(f"backbone.config: cannot build a {model_type!r} masked LM ({_short(e)})") from None
        hf = self.model.config
        if hf.vocab_size != self.vocab_size:
            raise ConfigError(
                f"backbone=hf_mlm: the model has {hf.vocab_size} token embeddings but the run's vocabulary has "
                f"{self.vocab_size} ids; build the domain from the model's own tokenizer (domain=text_hf domain.path=...)"
            )
        if vocab is not None and check_ids:
            self._check_ids(vocab, path)
        emb = getattr(self.model.base_model, "embeddings", None)
        pos_pad = getattr(emb, "padding_idx", None)  # RoBERTa-style positions start after the pad id
        max_pos = getattr(hf, "max_position_embeddings", None)
        self.max_length = None if max_pos is None else int(max_pos) - (int(pos_pad) + 1 if pos_pad is not None else 0)
        # The head's name, not the module: a second reference would duplicate its weights in state_dict.
        self._head_name = next((n for n in HEAD_NAMES if isinstance(getattr(self.model, n, None), torch.nn.Module)), None)

    def _check_ids(self, vocab: VocabSpec, path: str | None) -> None:
        hf = self.model.config
        if hf.pad_token_id is not None and int(hf.pad_token_id) != vocab.pad_id:
            raise ConfigError(f"backbone=hf_mlm: the model's pad_token_id is {hf.pad_token_id} but the run's pad id is "
                              f"{vocab.pad_id}; build the domain from the model's tokenizer (domain=text_hf)")
        if path is None:
            return
        d = Path(path).expanduser()
        if not any((d / n).is_file() for n in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json")):
            return  # weights only: size and pad id are all that can be checked
        from transformers import AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(str(d), local_files_only=True)
        except (OSError, ValueError):
            return
        for role, mine in (("mask", vocab.mask_id), ("pad", vocab.pad_id)):
            theirs = getattr(tok, f"{role}_token_id", None)
            if theirs is not None and int(theirs) != mine:
                raise ConfigError(f"backbone=hf_mlm: the model's {role} token id is {theirs} but the run's is {mine}; "
                                  f"build the domain from {d} (domain=text_hf domain.path={d})")
        if vocab.tokens is not None:
            theirs = tok.convert_ids_to_tokens(list(range(min(len(tok), vocab.size))))
            diff = next((i for i, (a, b) in enumerate(zip(vocab.tokens, theirs)) if a != b), None)
            if diff is not None:
                raise ConfigError(f"backbone=hf_mlm: token {diff} is {vocab.tokens[diff]!r} in the run's vocabulary but "
                                  f"{theirs[diff]!r} in {d}'s tokenizer")

    # ------------------------------------------------------------------ contract
    def _mask(self, x_t: Tensor, valid: Tensor | None) -> Tensor | None:
        check_inputs(x_t, valid)
        if self.max_length is not None and x_t.shape[1] > self.max_length:
            raise ValueError(f"hf_mlm: sequence length {x_t.shape[1]} exceeds the model's {self.max_length} positions")
        if valid is None or bool(valid.all()):
            return None  # no mask at all lets SDPA use its fastest kernels
        return valid.long()

    def features(self, x_t: Tensor, t: Tensor | None, valid: Tensor | None) -> Tensor:
        mask = self._mask(x_t, valid)
        return self.model.base_model(input_ids=x_t, attention_mask=mask).last_hidden_state

    def head(self, h: Tensor) -> Tensor:
        if self._head_name is None:
            raise NotImplementedError(f"hf_mlm: no known MLM head on {type(self.model).__name__}")
        return getattr(self.model, self._head_name)(h)

    def forward(self, x_t: Tensor, t: Tensor | None = None, valid: Tensor | None = None,
                output_mask: Tensor | None = None) -> Tensor:
        if self._head_name is not None:
            return super().forward(x_t, t, valid, output_mask)
        # Unknown head layout: full logits, then select.
        logits = self.model(input_ids=x_t, attention_mask=self._mask(x_t, valid)).logits
        return select_outputs(logits, output_mask)
