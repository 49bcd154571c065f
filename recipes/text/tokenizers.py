"""Text tokenizers: character, byte, trained BPE / WordPiece, GPT-2, BERT and any HF directory.

Everything except the character table goes through the ``tokenizers`` library (trained
or built here) or ``transformers`` (loading published tokenizer files); nothing
implements BPE by hand. A :class:`TextTokenizer` is a ``tokenizers.Tokenizer`` (or a
character table) plus the *roles* the diffusion vocabulary needs: ``mask`` and ``pad``
(always present and distinct: added as ``[MASK]``/``[PAD]`` when the tokenizer has none,
as for GPT-2), ``bos``/``eos`` (GPT-2: both ``<|endoftext|>``; BERT: ``[CLS]``/``[SEP]``;
trained tokenizers: ``[BOS]``/``[EOS]``) and ``unk``.

It saves to a directory as ``tokenizer.json`` (the library's own format) or
``chars.json``, plus ``text_tokenizer.json`` (kind and roles), which is what every
checkpoint carries under ``artifacts/``; loading it back needs neither the original
files nor ``transformers``.

transformers 5 trap: ``GPT2TokenizerFast(vocab_file=..., merges_file=...)`` and
``BertTokenizerFast(vocab_file=...)`` silently build an (almost) empty tokenizer. We pass
``vocab=``/``merges=`` and then check the loaded size against the vocabulary file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from seqdiff.errors import ConfigError, DataError

KINDS = ("char", "byte", "bpe", "wordpiece", "gpt2", "bert", "hf")
TRAINABLE = ("char", "bpe", "wordpiece")
META = "text_tokenizer.json"
BACKEND = "tokenizer.json"
CHARS = "chars.json"
FORMAT = 1
ROLES = ("mask", "pad", "bos", "eos", "unk")
#: specials of the tokenizers we build; mask/pad/bos/eos are placed first so their ids
#: do not depend on the corpus.
OWN_SPECIALS = {"pad": "[PAD]", "mask": "[MASK]", "bos": "[BOS]", "eos": "[EOS]"}


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable-character table (what ``ByteLevel`` uses)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


class TextTokenizer:
    """A tokenizer with named special-token roles; see the module docstring.

    Build with :func:`build_tokenizer`, :func:`train_tokenizer`, :func:`load_pretrained`
    or :meth:`load`.
    """

    def __init__(self, kind: str, roles: dict[str, str | None], *, backend=None, chars: Sequence[str] | None = None,
                 info: dict | None = None) -> None:
        if (backend is None) == (chars is None):
            raise ValueError("TextTokenizer: give exactly one of backend or chars")
        self.kind = kind
        self.backend = backend
        self.info = dict(info or {})
        if backend is not None:
            # A literal "[MASK]" or "<|endoftext|>" in a corpus is text, not a control token.
            backend.encode_special_tokens = True
            for role in ("mask", "pad"):
                if roles.get(role) is None:
                    roles[role] = OWN_SPECIALS[role]
            missing = [roles[r] for r in ROLES if roles.get(r) and backend.token_to_id(roles[r]) is None]
            if missing:
                backend.add_special_tokens(list(dict.fromkeys(missing)))
            self._tokens = [backend.id_to_token(i) for i in range(backend.get_vocab_size(with_added_tokens=True))]
            holes = [i for i, t in enumerate(self._tokens) if t is None]
            if holes:
                raise ConfigError(f"{kind} tokenizer: ids {holes[:5]} have no token (non-contiguous vocabulary)")
            added = backend.get_added_tokens_decoder()
            self.special_ids = sorted(i for i, tok in added.items() if tok.special)
        else:
            self._tokens = list(chars) + [OWN_SPECIALS[r] for r in ("mask", "pad", "bos", "eos")]
            roles = {**{r: OWN_SPECIALS.get(r) for r in ROLES}, "unk": None}
            self.special_ids = list(range(len(chars), len(self._tokens)))
            self._lut = {c: i for i, c in enumerate(chars)}
        self.roles = {r: roles.get(r) for r in ROLES}
        self._ids = {t: i for i, t in enumerate(self._tokens)}
        if self.id("mask") == self.id("pad"):
            raise ConfigError(f"{kind} tokenizer: mask and pad are the same token {self.roles['mask']!r}")

    # ------------------------------------------------------------------ vocabulary
    @property
    def tokens(self) -> list[str]:
        return self._tokens

    def __len__(self) -> int:
        return len(self._tokens)

    def id(self, role: str) -> int | None:
        tok = self.roles.get(role)
        return None if tok is None else self._ids[tok]

    # ------------------------------------------------------------------ text <-> ids
    def encode(self, text: str, *, where: str = "input") -> list[int]:
        """Ids of ``text`` with no special tokens added."""
        return self.encode_with_counts(text, where=where)[0]

    def encode_with_counts(self, text: str, *, where: str = "input") -> tuple[list[int], list[int]]:
        """Ids and, per token, how many characters of ``text`` it accounts for.

        Counts sum to ``len(text)``: each token is charged the characters between the end
        of the previous token's span and the end of its own (so whitespace a WordPiece
        pre-tokenizer drops goes to the next token, and a character split over two
        byte-level tokens is counted once). This is what bits per character divide by.
        """
        if self.backend is None:
            ids = []
            for i, ch in enumerate(text):
                idx = self._lut.get(ch)
                if idx is None:
                    raise DataError(f"{where}: character {ch!r} at position {i} is not in the character vocabulary "
                                    f"({len(self._lut)} characters seen in the corpus it was built from)")
                ids.append(idx)
            return ids, [1] * len(ids)
        enc = self.backend.encode(text, add_special_tokens=False)
        return list(enc.ids), _chars_per_token(text, enc.offsets)

    def encode_batch_with_counts(self, texts: Sequence[str], *, where: Sequence[str] | None = None) -> Iterator[tuple[list[int], list[int]]]:
        if self.backend is None:
            for i, t in enumerate(texts):
                yield self.encode_with_counts(t, where=where[i] if where else f"document {i}")
            return
        for start in range(0, len(texts), 1024):  # encode_batch runs on the library's thread pool
            chunk = list(texts[start : start + 1024])
            for text, enc in zip(chunk, self.backend.encode_batch(chunk, add_special_tokens=False)):
                yield list(enc.ids), _chars_per_token(text, enc.offsets)

    def decode(self, ids: Iterable[int]) -> str:
        ids = [int(i) for i in ids]
        if self.backend is None:
            return "".join(self._tokens[i] for i in ids)
        return self.backend.decode(ids, skip_special_tokens=False)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike) -> None:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        if self.backend is not None:
            self.backend.save(str(d / BACKEND))
        else:
            (d / CHARS).write_text(json.dumps(self._tokens[: len(self._lut)], ensure_ascii=False) + "\n", encoding="utf-8")
        meta = {"format": FORMAT, "kind": self.kind, "roles": self.roles, "size": len(self), "info": self.info}
        (d / META).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "TextTokenizer":
        d = Path(directory)
        meta_file = d / META
        if not meta_file.exists():
            raise ConfigError(f"{d}: no saved tokenizer ({META} missing)")
        meta = _read_json(meta_file)
        where = meta_file
        try:
            kind, roles = meta["kind"], meta["roles"]
            if (d / CHARS).exists() and kind == "char":
                where = d / CHARS
                tok = cls(kind, roles, chars=_read_json(d / CHARS), info=meta.get("info"))
            else:
                from tokenizers import Tokenizer

                if not (d / BACKEND).exists():
                    raise ConfigError(f"{d / BACKEND}: missing next to {META}")
                where = d / BACKEND
                try:
                    backend = Tokenizer.from_file(str(d / BACKEND))
                except Exception as e:  # the tokenizers library raises a bare Exception
                    raise ConfigError(f"{d / BACKEND}: not a readable tokenizers file ({' '.join(str(e).split())[:200]})") from None
                tok = cls(kind, roles, backend=backend, info=meta.get("info"))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            if isinstance(e, ConfigError):
                raise
            what = f"no {e}" if isinstance(e, KeyError) else " ".join(str(e).split())[:200]
            raise ConfigError(f"{where}: unreadable saved tokenizer ({what}; expected kind, roles and size)") from None
        if meta.get("size") is not None and meta["size"] != len(tok):
            raise ConfigError(f"{d}: saved tokenizer has {len(tok)} tokens, {META} says {meta['size']}")
        return tok

    def describe(self) -> dict:
        return {"kind": self.kind, "size": len(self), "roles": self.roles, **self.info}


def is_saved(directory: str | os.PathLike | None) -> bool:
    return directory is not None and (Path(directory) / META).exists()


# ---------------------------------------------------------------------- building
def byte_tokenizer() -> TextTokenizer:
    """256 byte ids (id = byte value) + specials: a BPE model with no merges."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    table = bytes_to_unicode()
    backend = Tokenizer(models.BPE(vocab={table[b]: b for b in range(256)}, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens([OWN_SPECIALS[r] for r in ("mask", "pad", "bos", "eos")])
    return TextTokenizer("byte", dict(OWN_SPECIALS), backend=backend)


def train_tokenizer(kind: str, texts: Iterable[str], *, vocab_size: int | None = None, min_frequency: int = 2,
                    lowercase: bool = False, chars: str | None = None) -> TextTokenizer:
    """Train a character table, byte-level BPE (GPT-2 style) or WordPiece (BERT style)."""
    if kind == "char":
        if chars:
            alphabet = sorted(set(chars))
        else:
            seen: set[str] = set()
            for t in texts:
                seen.update(t)
            alphabet = sorted(seen)
        if not alphabet:
            raise DataError("char tokenizer: the corpus has no characters")
        return TextTokenizer("char", dict(OWN_SPECIALS), chars=alphabet, info={"trained_on_chars": True})
    if kind == "byte":
        return byte_tokenizer()
    if kind not in ("bpe", "wordpiece"):
        raise ConfigError(f"tokenizer: cannot train kind {kind!r} (trainable: {', '.join(TRAINABLE)}, byte)")
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    specials = [OWN_SPECIALS[r] for r in ("pad", "mask", "bos", "eos")]
    if kind == "bpe":
        vocab_size = vocab_size or 8192
        backend = Tokenizer(models.BPE())
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        roles = dict(OWN_SPECIALS, unk=None)
    else:
        vocab_size = vocab_size or 8192
        backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        backend.normalizer = normalizers.BertNormalizer(lowercase=lowercase, clean_text=True, handle_chinese_chars=True)
        backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        backend.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                            special_tokens=[*specials, "[UNK]"], show_progress=False)
        roles = dict(OWN_SPECIALS, unk="[UNK]")
    if lowercase and kind == "bpe":
        backend.normalizer = normalizers.Lowercase()
    counter = _Counting(texts)
    backend.train_from_iterator(counter, trainer=trainer)
    if counter.chars == 0:
        raise DataError(f"{kind} tokenizer: the training corpus is empty")
    return TextTokenizer(kind, roles, backend=backend,
                         info={"vocab_size": vocab_size, "min_frequency": min_frequency, "trained_on_chars": counter.chars})


class _Counting:
    def __init__(self, texts: Iterable[str]) -> None:
        self.texts, self.chars = texts, 0

    def __iter__(self):
        for t in self.texts:
            self.chars += len(t)
            yield t


def _require(d: Path, names: Sequence[str], kind: str) -> None:
    missing = [n for n in names if not (d / n).is_file()]
    if missing:
        have = sorted(p.name for p in d.iterdir()) if d.is_dir() else []
        raise ConfigError(f"{d}: {kind} tokenizer directory lacks {', '.join(missing)} (has: {', '.join(have) or 'nothing'})")


def _check_size(tok, expected: int, d: Path, source: str) -> None:
    got = len(tok.backend_tokenizer.get_vocab(with_added_tokens=False))
    if got < expected:
        raise ConfigError(
            f"{d}: tokenizer loaded with {got} tokens but {source} lists {expected} "
            "(transformers 5 silently ignores vocab_file=/merges_file=; use vocab=/merges= or from_pretrained)"
        )


def load_pretrained(kind: str, path: str | os.PathLike, *, lowercase: bool | None = None) -> TextTokenizer:
    """GPT-2 / BERT files or any HF tokenizer directory, through ``transformers``."""
    d = Path(path).expanduser()
    if not d.is_dir():
        raise ConfigError(f"{d}: tokenizer directory not found")
    if kind == "gpt2":
        from transformers import GPT2Tokenizer  # the fast class in transformers 5

        if (d / "vocab.json").is_file() or not (d / BACKEND).is_file():
            _require(d, ["vocab.json", "merges.txt"], "GPT-2")
            vocab = _read_json(d / "vocab.json")
            if not isinstance(vocab, dict) or not vocab:
                raise ConfigError(f"{d / 'vocab.json'}: expected a JSON object mapping tokens to ids")
            tok = _hf_call(lambda: GPT2Tokenizer(vocab=str(d / "vocab.json"), merges=str(d / "merges.txt")), d / "merges.txt", "GPT-2")
            _check_size(tok, len(vocab), d, "vocab.json")
        else:
            _read_json(d / BACKEND)
            tok = _hf_call(lambda: GPT2Tokenizer.from_pretrained(str(d), local_files_only=True), d / BACKEND, "GPT-2")
        roles = {"bos": tok.bos_token, "eos": tok.eos_token, "unk": None, "mask": tok.mask_token, "pad": tok.pad_token}
        if roles["pad"] == roles["eos"]:
            roles["pad"] = None  # MDLM's GPT-2 setup: pad == eos == mask collisions; ours gets its own [PAD]
    elif kind == "bert":
        from transformers import BertTokenizer

        if (d / "vocab.txt").is_file() or not (d / BACKEND).is_file():
            _require(d, ["vocab.txt"], "BERT")
            kw = {} if lowercase is None else {"do_lower_case": lowercase}
            tok = BertTokenizer(vocab=str(d / "vocab.txt"), **kw)
            lines = [l for l in (d / "vocab.txt").read_text(encoding="utf-8").splitlines() if l.strip()]
            _check_size(tok, len(set(lines)), d, "vocab.txt")
        else:
            _read_json(d / BACKEND)
            tok = _hf_call(lambda: BertTokenizer.from_pretrained(str(d), local_files_only=True), d / BACKEND, "BERT")
        roles = {"bos": tok.cls_token, "eos": tok.sep_token, "unk": tok.unk_token, "mask": tok.mask_token, "pad": tok.pad_token}
    elif kind == "hf":
        from transformers import AutoTokenizer

        if not any((d / n).is_file() for n in ("tokenizer_config.json", "config.json")):
            _require(d, ["tokenizer_config.json"], "Hugging Face")
        for name in (BACKEND, "tokenizer_config.json"):
            if (d / name).is_file():
                _read_json(d / name)  # empty or corrupt JSON: name the file, not the directory
        try:
            tok = AutoTokenizer.from_pretrained(str(d), local_files_only=True)
        except Exception as e:  # OSError/ValueError from transformers, a bare Exception from tokenizers
            raise ConfigError(f"{d}: cannot load a Hugging Face tokenizer ({' '.join(str(e).split())[:240]})") from None
        if getattr(tok, "backend_tokenizer", None) is None:
            raise ConfigError(f"{d}: {type(tok).__name__} has no fast (tokenizers) backend; convert it to tokenizer.json")
        roles = {"bos": tok.bos_token or tok.cls_token, "eos": tok.eos_token or tok.sep_token, "unk": tok.unk_token,
                 "mask": tok.mask_token, "pad": tok.pad_token}
    else:
        raise ConfigError(f"tokenizer: kind {kind!r} is not a pretrained kind (gpt2, bert, hf)")
    from tokenizers import Tokenizer

    # A private copy of the backend: adding [MASK]/[PAD] must not touch transformers' object.
    backend = Tokenizer.from_str(tok.backend_tokenizer.to_str())
    return TextTokenizer(kind, {r: (str(v) if v is not None else None) for r, v in roles.items()}, backend=backend,
                         info={"source": str(d)})


def _hf_call(load, where: Path, what: str):
    """A transformers/tokenizers constructor, its failure reported against ``where``."""
    try:
        return load()
    except ConfigError:
        raise
    except Exception as e:  # OSError/ValueError from transformers, a bare Exception from tokenizers
        raise ConfigError(f"{where}: cannot load the {what} tokenizer ({' '.join(str(e).split())[:240]})") from None


def _read_json(path: Path):
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte offset {e.start}); expected a JSON file") from None
    if not text.strip():
        raise ConfigError(f"{path}: empty file, expected JSON")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None


def same_tokenizer(a: TextTokenizer, b: TextTokenizer) -> str | None:
    """None if ``a`` and ``b`` map ids identically, else a one-line difference."""
    if len(a) != len(b):
        return f"{len(a)} vs {len(b)} tokens"
    for i, (x, y) in enumerate(zip(a.tokens, b.tokens)):
        if x != y:
            return f"token {i} is {x!r} vs {y!r}"
    if a.roles != b.roles:
        return f"special roles {a.roles} vs {b.roles}"
    if a.backend is not None and b.backend is not None:
        probe = "Hello, World! 12 résumé\n  end"
        if a.backend.encode(probe).ids != b.backend.encode(probe).ids:
            return "same vocabulary but different merges/normalisation (they encode text differently)"
    return None


def _chars_per_token(text: str, offsets: Sequence[tuple[int, int]]) -> list[int]:
    """Characters of ``text`` each token accounts for, summing to ``len(text)``: a token
    ends where its offset ends (overlapping byte-level offsets count once), and the last
    one also takes any trailing text the tokenizer dropped (e.g. stripped whitespace)."""
    counts, prev = [], 0
    for _, end in offsets:
        end = max(end, prev)
        counts.append(end - prev)
        prev = end
    if counts:
        counts[-1] += len(text) - prev
    return counts
