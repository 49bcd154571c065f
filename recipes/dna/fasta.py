"""Random access to a genome FASTA through pyfaidx; the genome is never loaded whole.

What this module adds around ``pyfaidx.Fasta`` (which does the indexing and the
seek-and-read of each window):

* **Where the index goes.** pyfaidx writes ``genome.fa.fai`` (and ``.gzi`` for BGZF)
  next to the FASTA. When that directory is read-only (a shared data folder, a
  read-only mount, or a folder whose permission bits say read-only even to root) the
  index goes to a cache directory instead (``index_dir``, else ``$SEQDIFF_CACHE_DIR``,
  else ``~/.cache/seqdiff``). Index files are built under a temporary name and renamed,
  so a crash or a concurrent reader never sees half an index.
* **Input checks with file and line.** Empty files, text before the first header,
  headers without sequence, duplicate record names, plain gzip (pyfaidx needs BGZF for
  random access), truncated BGZF and characters the domain rejects all raise
  :class:`seqdiff.errors.DataError` naming the file, record and line. Windows line
  endings are accepted (pyfaidx strips ``\\r``).
* **Biopython for what pyfaidx does not do.** GenBank input and FASTA files with
  irregular line lengths (which cannot be indexed) are parsed record by record with
  ``Bio.SeqIO`` and rewritten once as a regular FASTA in the cache directory.

The character check scans the file once with a vectorised byte table and is remembered
in a small stamp file in the cache directory (keyed by path, size and mtime), so a
3 GB genome is scanned once, not at every start.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pyfaidx

from seqdiff.errors import DataError

GENBANK_SUFFIXES = (".gb", ".gbk", ".gbff", ".genbank")
BGZF_SUFFIXES = (".gz", ".bgz")
#: The 28-byte empty block every BGZF file ends with (SAM/BAM spec, section 4.1.2).
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
CHUNK = 8 << 20
STAMP_VERSION = 1


def cache_root() -> Path:
    env = os.environ.get("SEQDIFF_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "seqdiff"


def dir_writable(d: Path) -> bool:
    """Whether we may create files in ``d``.

    ``os.access`` answers for the current user, and root passes it even on a folder
    with mode ``r-x``; a folder nobody may write to is treated as read-only for root
    too, since someone made it so on purpose (e.g. shared reference data).
    """
    try:
        st = d.stat()
    except OSError:
        return False
    if not os.access(d, os.W_OK | os.X_OK):
        return False
    if os.geteuid() == 0 and not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        return False
    return True


def _file_key(path: Path) -> str:
    st = path.stat()
    raw = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _sniff(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(18)


def _is_bgzf(head: bytes) -> bool:
    # gzip member with FEXTRA whose first subfield is 'BC' (the BGZF block size).
    return len(head) >= 14 and head[:4] == b"\x1f\x8b\x08\x04" and head[12:14] == b"BC"


def _open_text_stream(path: Path, compressed: bool):
    return gzip.open(path, "rb") if compressed else open(path, "rb")


class FastaFile:
    """A FASTA (plain or BGZF) or GenBank file opened for random access.

    Args:
        path: the file. ``.gb/.gbk/.gbff/.genbank`` (or a file starting with ``LOCUS``)
            is read as GenBank and converted once to FASTA in the cache directory.
        index_dir: where index and converted files go when they cannot go next to the
            FASTA (default: ``$SEQDIFF_CACHE_DIR`` or ``~/.cache/seqdiff``).
    """

    def __init__(self, path: str | os.PathLike, *, index_dir: str | os.PathLike | None = None) -> None:
        self.source = Path(path).expanduser()
        self.cache = Path(index_dir).expanduser() if index_dir else cache_root()
        if not self.source.is_file():
            raise DataError(f"{self.source}: FASTA file not found")
        if self.source.stat().st_size == 0:
            raise DataError(f"{self.source}: empty file (expected FASTA records starting with '>')")
        head = _sniff(self.source)
        self.compressed = head[:2] == b"\x1f\x8b"
        if head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00" or head[:4] == b"PK\x03\x04" or head[:4] == b"\x28\xb5\x2f\xfd":
            raise DataError(
                f"{self.source}: compressed with bzip2/xz/zip/zstd, which has no random access; "
                "decompress it, or recompress with `bgzip` (htslib) to keep it compressed"
            )
        self.path = self.source
        if self._looks_like_genbank():
            # Parsed sequentially once (any gzip is fine), then read as FASTA.
            self.path = self._convert_genbank()
            self.compressed = False
        else:
            if self.compressed:
                self._check_bgzf(head)
            self._check_first_line()
        self.index_path, self.gzi_path = self._index_location()
        try:
            self._ensure_index()
        except _IrregularLines as e:
            # pyfaidx needs equal line lengths within a record; rewrite once via Bio.SeqIO.
            self.path = self._normalise(str(e))
            self.compressed = False
            self.index_path, self.gzi_path = self._index_location()
            self._ensure_index()
        self._fa: pyfaidx.Fasta | None = None
        self._pid = -1
        fa = self._handle()
        self.index = dict(fa.faidx.index)
        self.names = list(self.index)
        self.lengths = {n: int(r.rlen) for n, r in self.index.items()}
        for n, r in self.index.items():
            if r.rlen == 0:
                raise DataError(
                    f"{self.source}: record {n!r} (header at line {self._line_at(r.offset) - 1}) has no sequence"
                )

    # ------------------------------------------------------------------ opening
    def _check_bgzf(self, head: bytes) -> None:
        if not _is_bgzf(head):
            raise DataError(
                f"{self.source}: gzip-compressed but not BGZF (block gzip); random access needs BGZF. "
                f"Recompress with `gunzip -c {self.source.name} | bgzip > genome.fa.gz` (bgzip is in htslib/samtools) "
                "or decompress it"
            )
        with open(self.source, "rb") as f:
            f.seek(max(0, self.source.stat().st_size - len(BGZF_EOF)))
            tail = f.read()
        if tail != BGZF_EOF:
            raise DataError(
                f"{self.source}: truncated BGZF file (no end-of-file block); the download or copy was cut short, "
                "fetch it again"
            )
        if self.source.suffix.lower() not in BGZF_SUFFIXES:
            raise DataError(f"{self.source}: BGZF-compressed FASTA must be named *.gz or *.bgz (pyfaidx picks the reader by suffix)")

    def _looks_like_genbank_name(self) -> bool:
        return self.source.suffix.lower() in GENBANK_SUFFIXES

    def _looks_like_genbank(self) -> bool:
        if self._looks_like_genbank_name():
            return True
        first = self._first_content_line()
        return first is not None and first[1].startswith(b"LOCUS")

    def _first_content_line(self) -> tuple[int, bytes] | None:
        try:
            with _open_text_stream(self.source, self.compressed) as f:
                for i in range(1, 10_001):
                    line = f.readline(1 << 16)  # bounded: a sequence line may be a whole chromosome
                    if not line:
                        break
                    s = line.strip()
                    if s and not s.startswith(b";"):
                        return i, s
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{self.source}: cannot read ({e}); the file may be truncated or corrupt") from None
        return None

    def _check_first_line(self) -> None:
        first = self._first_content_line()
        if first is None:
            raise DataError(f"{self.source}: no FASTA records (the file has no '>' header line)")
        lineno, text = first
        if not text.startswith(b">"):
            shown = text[:20].decode("ascii", "replace")
            raise DataError(
                f"{self.source}, line {lineno}: expected a FASTA header starting with '>', found {shown!r} "
                "(sequence before the first header?)"
            )

    def _index_location(self) -> tuple[Path, Path | None]:
        fai = Path(str(self.path) + ".fai")
        gzi = Path(str(self.path) + ".gzi") if self.compressed else None
        if self._fresh(fai) and (gzi is None or self._fresh(gzi)):
            return fai, gzi
        if dir_writable(self.path.parent):
            return fai, gzi
        d = self.cache / "index" / _file_key(self.path)
        return d / fai.name, (d / gzi.name if gzi else None)

    def _fresh(self, index: Path) -> bool:
        try:
            return index.stat().st_mtime_ns >= self.path.stat().st_mtime_ns and index.stat().st_size > 0
        except OSError:
            return False

    def _ensure_index(self) -> None:
        if self._fresh(self.index_path) and (self.gzi_path is None or self._fresh(self.gzi_path)):
            return
        target = self.index_path.parent
        try:
            target.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".seqdiff-index-", dir=target))
        except OSError:
            # The folder looked writable but is not (e.g. a read-only mount): use the cache.
            d = self.cache / "index" / _file_key(self.path)
            self.index_path = d / self.index_path.name
            self.gzi_path = d / self.gzi_path.name if self.gzi_path else None
            d.mkdir(parents=True, exist_ok=True)
            target, tmp = d, Path(tempfile.mkdtemp(prefix=".seqdiff-index-", dir=d))
        tmp_fai = tmp / self.index_path.name
        tmp_gzi = tmp / self.gzi_path.name if self.gzi_path else None
        try:
            try:
                faidx = pyfaidx.Faidx(
                    str(self.path),
                    indexname=str(tmp_fai),
                    gzi_indexname=str(tmp_gzi) if tmp_gzi else None,
                    as_raw=True,
                )
                faidx.close()
            except pyfaidx.FastaIndexingError as e:
                msg = str(e)
                if "not consistent" in msg:
                    raise _IrregularLines(msg) from None
                raise DataError(f"{self.source}: cannot index: {msg}") from None
            except UnicodeDecodeError:
                raise DataError(self._non_ascii_message()) from None
            except ValueError as e:
                if "Duplicate key" in str(e):
                    raise DataError(self._duplicate_message(tmp_fai)) from None
                raise DataError(f"{self.source}: cannot index: {e}") from None
            except (OSError, EOFError, zlib.error) as e:
                raise DataError(f"{self.source}: cannot read while indexing ({e}); the file may be truncated or corrupt") from None
            # An index must not look older than its FASTA (a FASTA copied with a future
            # mtime would otherwise be re-indexed at every start).
            src_mtime = self.path.stat().st_mtime_ns
            for p in (tmp_fai, tmp_gzi):
                if p is not None and p.stat().st_mtime_ns < src_mtime:
                    os.utime(p, ns=(src_mtime, src_mtime))
            if tmp_gzi is not None:
                os.replace(tmp_gzi, self.gzi_path)
            os.replace(tmp_fai, self.index_path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _non_ascii_message(self) -> str:
        with _open_text_stream(self.path, self.compressed) as f:
            for lineno, line in enumerate(f, 1):
                bad = next((i for i, b in enumerate(line) if b > 127), None)
                if bad is not None:
                    return f"{self.source}, line {lineno}, column {bad + 1}: non-ASCII byte 0x{line[bad]:02x} (FASTA is plain ASCII)"
        return f"{self.source}: non-ASCII bytes (FASTA is plain ASCII)"

    def _duplicate_message(self, fai: Path) -> str:
        seen: dict[str, int] = {}
        for line in fai.read_text().splitlines():
            name, _, offset, *_ = line.split("\t")
            header = self._line_at(int(offset)) - 1
            if name in seen:
                return (
                    f"{self.source}: duplicate record name {name!r} (headers at lines {seen[name]} and {header}); "
                    "record names (the first word of each header) must be unique"
                )
            seen[name] = header
        return f"{self.source}: duplicate record names"

    def _handle(self) -> pyfaidx.Fasta:
        # A forked worker must not share the parent's file offset: reopen per process.
        if self._fa is None or self._pid != os.getpid():
            try:
                self._fa = pyfaidx.Fasta(
                    str(self.path),
                    indexname=str(self.index_path),
                    gzi_indexname=str(self.gzi_path) if self.gzi_path else None,
                    as_raw=True,
                    strict_bounds=True,
                    build_index=False,
                    rebuild=False,
                )
            except ValueError as e:
                raise DataError(f"{self.source}: {e}") from None
            self._pid = os.getpid()
        return self._fa

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_fa"], state["_pid"] = None, -1
        return state

    def close(self) -> None:
        if self._fa is not None:
            self._fa.close()
            self._fa = None

    # ------------------------------------------------------------------ derived copies
    def _derived_path(self, suffix: str) -> Path:
        d = self.cache / "converted" / _file_key(self.source)
        d.mkdir(parents=True, exist_ok=True)
        return d / (self.source.name + suffix)

    def _convert_genbank(self) -> Path:
        from Bio import SeqIO
        from Bio.Seq import UndefinedSequenceError

        out = self._derived_path(".fa")
        if out.exists():
            return out
        fd, tmp = tempfile.mkstemp(prefix=".seqdiff-", suffix=".fa", dir=out.parent)
        seen: set[str] = set()
        try:
            with os.fdopen(fd, "w") as f, _open_text_stream(self.source, self.compressed) as raw:
                n = 0
                for n, rec in enumerate(SeqIO.parse(io.TextIOWrapper(raw, encoding="ascii", errors="replace"), "genbank"), 1):
                    if rec.id in seen:
                        raise DataError(f"{self.source}: duplicate GenBank record id {rec.id!r} (record {n})")
                    seen.add(rec.id)
                    try:
                        seq = str(rec.seq)
                    except UndefinedSequenceError:
                        raise DataError(f"{self.source}: GenBank record {n} ({rec.id}) has no sequence (CONTIG-only entry?)") from None
                    if not seq:
                        raise DataError(f"{self.source}: GenBank record {n} ({rec.id}) has no sequence")
                    f.write(f">{rec.id} {rec.description}\n")
                    for i in range(0, len(seq), 60):
                        f.write(seq[i : i + 60] + "\n")
                if n == 0:
                    raise DataError(f"{self.source}: no GenBank records found")
            os.replace(tmp, out)
        except ValueError as e:
            if isinstance(e, DataError):
                raise
            raise DataError(f"{self.source}: not valid GenBank: {e}") from None
        finally:
            Path(tmp).unlink(missing_ok=True)
        return out

    def _normalise(self, reason: str) -> Path:
        """Rewrite a FASTA with irregular line lengths as 60-column FASTA (Bio.SeqIO)."""
        from Bio.SeqIO.FastaIO import SimpleFastaParser

        out = self._derived_path(".normalised.fa")
        if out.exists():
            return out
        print(f"note: {self.source} has irregular line lengths ({reason}); writing a regular copy to {out}", file=sys.stderr)
        fd, tmp = tempfile.mkstemp(prefix=".seqdiff-", suffix=".fa", dir=out.parent)
        try:
            with os.fdopen(fd, "w") as f, _open_text_stream(self.source, self.compressed) as raw:
                for title, seq in SimpleFastaParser(io.TextIOWrapper(raw, encoding="ascii", errors="replace", newline=None)):
                    seq = seq.replace("\r", "")
                    f.write(f">{title}\n")
                    for i in range(0, len(seq), 60):
                        f.write(seq[i : i + 60] + "\n")
            os.replace(tmp, out)
        except ValueError as e:
            raise DataError(f"{self.source}: cannot parse as FASTA: {e}") from None
        finally:
            Path(tmp).unlink(missing_ok=True)
        return out

    # ------------------------------------------------------------------ access
    def fetch(self, name: str, start: int, end: int) -> str:
        """Bases ``[start, end)`` (0-based, half-open) of record ``name``, as stored."""
        try:
            # Faidx.fetch (1-based, inclusive) is what Fasta[name][a:b] ends up calling;
            # calling it directly skips two layers of per-window overhead.
            return self._handle().faidx.fetch(name, start + 1, end)
        except KeyError:
            raise DataError(f"{self.source}: no record named {name!r}") from None
        except pyfaidx.FetchError as e:
            raise DataError(f"{self.source}: {name}:{start}-{end}: {e}") from None

    def base_location(self, name: str, pos: int) -> tuple[int, int]:
        """(line, column), both 1-based, of base ``pos`` (0-based) of record ``name``."""
        r = self.index[name]
        byte = r.offset + (pos // r.lenc) * r.lenb + pos % r.lenc if r.lenc else r.offset
        return self._line_at(byte), pos % r.lenc + 1 if r.lenc else 1

    def _line_at(self, byte: int) -> int:
        """1-based line number of uncompressed byte offset ``byte`` (error paths only)."""
        newlines, done = 0, 0
        with _open_text_stream(self.path, self.compressed) as f:
            while done < byte:
                chunk = f.read(min(CHUNK, byte - done))
                if not chunk:
                    break
                newlines += chunk.count(b"\n")
                done += len(chunk)
        return newlines + 1

    def header_line(self, name: str) -> int:
        return self._line_at(self.index[name].offset) - 1

    # ------------------------------------------------------------------ validation
    def validate(self, table: np.ndarray, explain: Callable[[str], str]) -> dict:
        """Check every sequence byte against ``table`` (byte -> id, -1 = rejected).

        Returns the byte histogram of the sequence (for composition statistics). The
        result is remembered in a stamp file in the cache directory, keyed by the file's
        path, size and mtime and by the table, so an unchanged genome is scanned only once.
        """
        key = hashlib.sha1(np.asarray(table, dtype=np.int16).tobytes()).hexdigest()
        # The stamp lives in the cache, not beside the user's genome (only the .fai does).
        stamp = self.cache / "validated" / f"{_file_key(self.path)}.json"
        st = self.path.stat()
        try:
            old = json.loads(stamp.read_text())
            if old.get("version") == STAMP_VERSION and old.get("size") == st.st_size and old.get("mtime_ns") == st.st_mtime_ns and old.get("table") == key:
                return {int(k): v for k, v in old["histogram"].items()}
        except (OSError, ValueError, KeyError, AttributeError):
            pass
        ok = np.asarray(table) >= 0
        ok[[ord("\n"), ord("\r")]] = True
        hist = np.zeros(256, dtype=np.int64)
        with _open_text_stream(self.path, self.compressed) as f:
            for name, r in sorted(self.index.items(), key=lambda kv: kv[1].offset):
                f.seek(r.offset)
                remaining, byte = r.bend - r.offset, r.offset
                while remaining > 0:
                    chunk = f.read(min(CHUNK, remaining))
                    if not chunk:
                        line = self._line_at(byte)
                        raise DataError(f"{self.source}: record {name!r} ends early at line {line} (file truncated?)")
                    arr = np.frombuffer(chunk, dtype=np.uint8)
                    counts = np.bincount(arr, minlength=256)  # one pass: histogram and check
                    if counts[~ok].any():
                        i = int(np.argmin(ok[arr]))
                        line = self._line_at(byte + i)
                        col = i - (chunk.rfind(b"\n", 0, i) + 1)
                        if col == i:  # the line started in an earlier chunk
                            col = self._column_at(byte + i)
                        ch = chr(arr[i])
                        raise DataError(f"{self.source}: record {name!r}, line {line}, column {col + 1}: character {ch!r} {explain(ch)}")
                    hist += counts
                    remaining -= len(chunk)
                    byte += len(chunk)
        hist[[ord("\n"), ord("\r")]] = 0
        result = {int(b): int(c) for b, c in enumerate(hist) if c}
        record = {"version": STAMP_VERSION, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "table": key, "histogram": result}
        try:  # best effort: an unwritable cache just means scanning again next time
            stamp.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".seqdiff-", dir=stamp.parent)
            with os.fdopen(fd, "w") as fh:
                json.dump(record, fh)
            os.replace(tmp, stamp)
        except OSError:
            pass
        return result

    def _column_at(self, byte: int) -> int:
        with _open_text_stream(self.path, self.compressed) as f:
            start = max(0, byte - (1 << 20))
            f.seek(start)
            data = f.read(byte - start)
        return byte - (start + data.rfind(b"\n") + 1)

    def records(self) -> Iterator[tuple[str, int]]:
        for n in self.names:
            yield n, self.lengths[n]


class _IrregularLines(Exception):
    pass
