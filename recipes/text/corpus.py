"""Reading a text corpus into documents, and the deterministic train/valid/test split.

A corpus is a plain-text file, a directory of files (recursive, sorted by path), or a
JSONL file whose lines are objects with a text field. A text file is one document
(``document: file``), one per non-empty line (``line``: LM1B-style sentence files) or
one per blank-line-separated paragraph (``paragraph``). Bytes must be UTF-8: the error
names the file and byte offset, or ``encoding_errors: replace`` substitutes U+FFFD.

Splits (``split_by``):

``characters``
    nanoGPT's split: the documents, in order, are cut at the given fractions of their
    total character count (a document straddling a boundary is cut there). For a single
    file and ``[0.9, 0.1, 0]`` this is exactly ``text[:int(0.9 n)]`` / ``text[int(0.9 n):]``.
``documents``
    every document goes to a split by a hash of ``(split_seed, index)``: stable, and
    independent of how many documents follow.

``valid_path`` / ``test_path`` name explicit held-out corpora instead; the share of
``split_fractions`` they replace goes to training (``[0.99, 0.01, 0]`` with a
``test_path``: 99% of ``path`` trains, 1% validates, the test corpus tests).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

from seqdiff.errors import ConfigError, DataError
from seqdiff.utils.seeding import derive_seed

DOCUMENT_MODES = ("file", "line", "paragraph")
FORMATS = ("auto", "text", "jsonl")
SPLITS = ("train", "valid", "test")
BUILTINS = ("pydoc_topics",)


@dataclass(frozen=True)
class Document:
    text: str
    where: str  # "file", "file:line" or "builtin:key", for error messages
    label: str | None = None  # JSONL with a label field: the record's label


@dataclass
class CorpusSpec:
    """Where the text is and how it is split (``data.corpus`` in the configs)."""

    path: str | None = None
    builtin: str | None = None  # used only when path is null: pydoc_topics
    format: str = "auto"  # auto (by suffix: .jsonl/.ndjson are JSONL) | text | jsonl
    field: str = "text"  # JSONL: the field holding the text
    document: str = "file"  # text files: file | line | paragraph
    pattern: str = "*"  # directories: glob matched recursively against file names
    encoding_errors: str = "strict"  # strict (error with file and byte offset) | replace (U+FFFD)
    split_by: str = "characters"  # characters (contiguous, nanoGPT) | documents (hashed)
    split_fractions: Sequence[float] = (0.9, 0.05, 0.05)
    split_seed: int = 0
    valid_path: str | None = None
    test_path: str | None = None
    max_documents: int | None = None  # cap for quick experiments (first N documents)
    label_field: str | None = None  # JSONL: each record's label (set by TextData's data.label_field)

    @classmethod
    def from_config(cls, cfg: dict[str, Any] | "CorpusSpec" | None) -> "CorpusSpec":
        if isinstance(cfg, CorpusSpec):
            return cfg
        cfg = dict(cfg or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ConfigError(f"data.corpus: unknown keys {unknown}; accepted: {sorted(known)}")
        spec = cls(**cfg)
        spec.check()
        return spec

    def check(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(f"data.corpus.format must be one of {FORMATS}, got {self.format!r}")
        if self.document not in DOCUMENT_MODES:
            raise ConfigError(f"data.corpus.document must be one of {DOCUMENT_MODES}, got {self.document!r}")
        if self.encoding_errors not in ("strict", "replace"):
            raise ConfigError(f"data.corpus.encoding_errors must be strict or replace, got {self.encoding_errors!r}")
        if self.split_by not in ("characters", "documents"):
            raise ConfigError(f"data.corpus.split_by must be characters or documents, got {self.split_by!r}")
        fr = [float(f) for f in self.split_fractions]
        if len(fr) != 3 or any(f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6 or fr[0] <= 0:
            raise ConfigError(f"data.corpus.split_fractions must be 3 non-negative numbers summing to 1 "
                              f"with a positive train share, got {list(self.split_fractions)}")
        if self.path is None and self.builtin is None:
            raise ConfigError("data.corpus.path: give a text file, a directory or a JSONL file "
                              "(e.g. data.corpus.path=input.txt), or data.corpus.builtin=pydoc_topics")
        if self.path is None and self.builtin not in BUILTINS:
            raise ConfigError(f"data.corpus.builtin must be one of {BUILTINS}, got {self.builtin!r}")

    def describe(self) -> dict:
        return {f.name: (list(v) if isinstance(v, tuple) else v) for f in fields(self) for v in [getattr(self, f.name)]}


# ---------------------------------------------------------------------- reading
def _decode(raw: bytes, path: Path, errors: str) -> str:
    try:
        return raw.decode("utf-8", errors=errors)
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(
            f"{path}: invalid UTF-8 at byte offset {e.start} (line {line}, byte 0x{raw[e.start]:02x}); "
            "convert the file to UTF-8 or set data.corpus.encoding_errors=replace"
        ) from None


def _files(spec: CorpusSpec, path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        found = sorted(p for p in path.rglob(spec.pattern) if p.is_file() and not any(
            part.startswith(".") for part in p.relative_to(path).parts))
        if not found:
            raise DataError(f"{path}: no files matching {spec.pattern!r} in this directory")
        return found
    raise DataError(f"{path}: no such corpus file or directory")


def _is_jsonl(spec: CorpusSpec, f: Path) -> bool:
    return spec.format == "jsonl" or (spec.format == "auto" and f.suffix.lower() in (".jsonl", ".ndjson"))


def jsonl_text_records(f: Path, text: str, field: str, hint: str) -> Iterator[tuple[int, dict, str]]:
    """``(line number, record, its string field)`` for each non-blank line of JSONL ``text``;
    every malformed line is one :class:`DataError` naming ``f:line`` (``hint``: the key to set
    when the field is missing)."""
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{f}:{n}: not valid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{f}:{n}: a JSON {type(obj).__name__}, expected a JSON object with a {field!r} field")
        if field not in obj:
            raise DataError(f"{f}:{n}: no field {field!r} (found {sorted(obj)}); set {hint}")
        value = obj[field]
        if not isinstance(value, str):
            raise DataError(f"{f}:{n}: field {field!r} is {type(value).__name__}, expected a string")
        yield n, obj, value


def _jsonl_documents(spec: CorpusSpec, f: Path, text: str) -> list[Document]:
    docs = []
    for n, obj, value in jsonl_text_records(f, text, spec.field, "data.corpus.field"):
        label = None
        if spec.label_field is not None:
            if spec.label_field not in obj:
                raise DataError(f"{f}:{n}: no label field {spec.label_field!r} (found {sorted(obj)}); every record "
                                "needs one (data.label_field)")
            label = obj[spec.label_field]
            if not isinstance(label, (str, int)) or isinstance(label, bool):
                raise DataError(f"{f}:{n}: label field {spec.label_field!r} is {type(label).__name__}, expected a "
                                "string or an integer")
            label = str(label)
        docs.append(Document(value, f"{f}:{n}", label))
    return docs


def _text_documents(spec: CorpusSpec, f: Path, text: str) -> list[Document]:
    if spec.document == "file":
        return [Document(text, str(f))]
    if spec.document == "line":
        return [Document(l, f"{f}:{n}") for n, l in enumerate(text.splitlines(), start=1) if l.strip()]
    docs, buf, first = [], [], 1
    for n, l in enumerate(text.splitlines(), start=1):
        if l.strip():
            if not buf:
                first = n
            buf.append(l)
        elif buf:
            docs.append(Document("\n".join(buf), f"{f}:{first}"))
            buf = []
    if buf:
        docs.append(Document("\n".join(buf), f"{f}:{first}"))
    return docs


def read_documents(spec: CorpusSpec, path: str | os.PathLike | None = None) -> list[Document]:
    """All documents of ``path`` (default ``spec.path``, else the builtin corpus)."""
    if path is None and spec.path is None:
        from seqdiff_recipes.text.pydoc_corpus import pydoc_documents

        docs = [Document(t, f"builtin:{k}") for k, t in pydoc_documents()]
    else:
        root = Path(path if path is not None else spec.path).expanduser()
        docs = []
        for f in _files(spec, root):
            text = _decode(f.read_bytes(), f, spec.encoding_errors)
            if spec.label_field is not None and not _is_jsonl(spec, f):
                raise DataError(f"{f}: data.label_field={spec.label_field} reads a JSONL field, but this file is not "
                                "JSONL (.jsonl/.ndjson or data.corpus.format=jsonl)")
            docs.extend(_jsonl_documents(spec, f, text) if _is_jsonl(spec, f) else _text_documents(spec, f, text))
        where = str(root)
        if not any(d.text.strip() for d in docs):
            raise DataError(f"{where}: the corpus is empty (no non-whitespace text)")
    if spec.max_documents:
        docs = docs[: int(spec.max_documents)]
    return docs


# ---------------------------------------------------------------------- splitting
@dataclass
class Splits:
    train: list[Document] = field(default_factory=list)
    valid: list[Document] = field(default_factory=list)
    test: list[Document] = field(default_factory=list)

    def get(self, name: str) -> list[Document]:
        if name not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS}, got {name!r}")
        return getattr(self, name)

    def sizes(self) -> dict[str, dict[str, int]]:
        return {s: {"documents": len(self.get(s)), "characters": sum(len(d.text) for d in self.get(s))} for s in SPLITS}


def split_corpus(spec: CorpusSpec) -> Splits:
    """The documents of each split (see the module docstring)."""
    docs = read_documents(spec)
    explicit = {s: getattr(spec, f"{s}_path") for s in ("valid", "test")}
    fr = [float(f) for f in spec.split_fractions]
    if any(explicit.values()):
        # An explicit corpus replaces its split; its fraction goes back to training.
        for i, s in ((1, "valid"), (2, "test")):
            if explicit[s]:
                fr[0], fr[i] = fr[0] + fr[i], 0.0
    out = _hashed(docs, fr, spec.split_seed) if spec.split_by == "documents" else _contiguous(docs, fr)
    for s, p in explicit.items():
        if p:
            setattr(out, s, read_documents(spec, p))
    return out


def _hashed(docs: list[Document], fr: list[float], seed: int) -> Splits:
    out = Splits()
    for i, d in enumerate(docs):
        u = derive_seed(seed, i) / 2.0**63
        out.get("train" if u < fr[0] else "valid" if u < fr[0] + fr[1] else "test").append(d)
    return out


def _contiguous(docs: list[Document], fr: list[float]) -> Splits:
    total = sum(len(d.text) for d in docs)
    cuts = [int(total * fr[0]), int(total * (fr[0] + fr[1]))]
    out = Splits()
    pos = 0
    for d in docs:
        start, n = pos, len(d.text)
        pieces = [("train", 0, cuts[0]), ("valid", cuts[0], cuts[1]), ("test", cuts[1], total)]
        for name, lo, hi in pieces:
            a, b = max(lo, start) - start, min(hi, start + n) - start
            if b > a:
                out.get(name).append(replace(d, text=d.text[a:b], where=d.where if (a, b) == (0, n) else f"{d.where}[{a}:{b}]"))
        pos += n
    return out
