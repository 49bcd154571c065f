"""``seqdiff download hg38 --dir DIR``: the HG38 files of the HyenaDNA/Caduceus setup.

Fetches what their ``data.sh`` fetches, into the names their configs use:

* ``hg38.ml.fa``: Basenji's copy of the UCSC hg38 assembly
  (``basenji_barnyard2/hg38.ml.fa.gz``, gunzipped, since random access needs either a
  plain file or BGZF and this is plain gzip), the FASTA HyenaDNA and Caduceus train on.
  ``--fasta ucsc`` takes UCSC's own ``hg38.fa.gz`` instead (checked against UCSC's
  ``md5sum.txt``); numbers are then not guaranteed comparable.
* ``human-sequences.bed``: Basenji's ``sequences_human.bed`` (chrom, start, end,
  train/valid/test).

Downloads are **resumable** (an interrupted file is kept as ``.NAME.part`` and continued
with an HTTP Range request; a changed remote ETag restarts it), **verified** (byte count
against Content-Length/Content-Range, then MD5 from the server's ``x-goog-hash`` header
or the source's ``md5sum.txt``, or a pinned SHA-256 when one is known) and **atomic**
(a file appears under its final name only once complete and verified). ``DIR/manifest.json``
records size, SHA-256 and how each file was verified. ``--source`` points at a mirror:
an ``http(s)://`` or ``file://`` URL, or a local folder, holding the same file names.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

from seqdiff.errors import SeqdiffError
from seqdiff.utils.io import atomic_write_json, fsync_dir, sha256_file

BASENJI = "https://storage.googleapis.com/basenji_barnyard2"
UCSC = "https://hgdownload.soe.ucsc.edu/goldenPath/hg38/bigZips"
BLOCK = 1 << 20


class DownloadError(SeqdiffError):
    """A download that failed; the message says whether it can be resumed."""


@dataclass(frozen=True)
class Remote:
    """One file: ``name`` at ``base`` is saved as ``dest`` (gunzipped if ``gunzip``)."""

    name: str
    dest: str
    base: str
    gunzip: bool = False
    sha256: str | None = None  # pinned checksum of the remote file, when known


def hg38_files(fasta: str = "basenji", source: str | None = None) -> list[Remote]:
    # No SHA-256 is pinned: they could not be obtained from this (offline) machine. The
    # server's MD5 (GCS x-goog-hash / UCSC md5sum.txt) verifies the transfer instead,
    # and manifest.json records the SHA-256 of what was received.
    if fasta == "ucsc":
        fa = Remote("hg38.fa.gz", "hg38.fa", source or UCSC, gunzip=True)
    else:
        fa = Remote("hg38.ml.fa.gz", "hg38.ml.fa", source or BASENJI, gunzip=True)
    return [fa, Remote("sequences_human.bed", "human-sequences.bed", source or BASENJI)]


# ---------------------------------------------------------------------------- transport
def _url(base: str, name: str) -> str:
    if "://" not in base:  # a local folder
        return Path(base).expanduser().resolve().joinpath(name).as_uri()
    return base.rstrip("/") + "/" + urllib.parse.quote(name)


class _Response:
    """What a GET returned: a byte stream starting at ``offset`` of a ``total``-byte file."""

    def __init__(self, stream, offset: int, total: int | None, etag: str | None, md5: str | None) -> None:
        self.stream, self.offset, self.total, self.etag, self.md5 = stream, offset, total, etag, md5


def _open(url: str, offset: int, timeout: float) -> _Response:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        path = Path(urllib.request.url2pathname(parsed.path))
        if not path.is_file():
            raise DownloadError(f"{url}: no such file at the source")
        st = path.stat()
        f = open(path, "rb")
        offset = min(offset, st.st_size)
        f.seek(offset)
        return _Response(f, offset, st.st_size, f"{st.st_size}-{st.st_mtime_ns}", None)
    req = urllib.request.Request(url, headers={"User-Agent": "seqdiff-download", "Accept-Encoding": "identity"})
    if offset:
        req.add_header("Range", f"bytes={offset}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            return _Response(None, offset, offset, e.headers.get("ETag"), None)  # already complete
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(
            f"cannot reach {parsed.netloc or url}: {reason} (offline? pass --source with a mirror URL or a local folder)"
        ) from None
    headers = resp.headers
    md5 = None
    for part in ",".join(headers.get_all("x-goog-hash") or []).split(","):
        k, _, v = part.strip().partition("=")
        if k == "md5" and v:
            md5 = base64.b64decode(v + "==").hex()
    length = headers.get("Content-Length")
    if resp.status == 206:
        rng = headers.get("Content-Range", "")  # bytes START-END/TOTAL
        try:
            start = int(rng.split()[1].split("-")[0])
            total = int(rng.split("/")[1])
        except (IndexError, ValueError):
            raise DownloadError(f"{url}: unreadable Content-Range {rng!r}") from None
        if start != offset:
            resp.close()
            raise DownloadError(f"{url}: server resumed at byte {start}, asked for {offset}")
        return _Response(resp, start, total, headers.get("ETag"), md5)
    return _Response(resp, 0, int(length) if length else None, headers.get("ETag"), md5)


def _source_md5(base: str, name: str, timeout: float) -> str | None:
    """MD5 of ``name`` from an ``md5sum.txt`` next to it (UCSC publishes one), if any."""
    try:
        r = _open(_url(base, "md5sum.txt"), 0, timeout)
    except DownloadError:
        return None
    try:
        text = r.stream.read(1 << 20).decode("utf-8", "replace")
    finally:
        r.stream.close()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == name:
            return parts[0].lower()
    return None


# ---------------------------------------------------------------------------- one file
def download(url: str, dest: Path, *, sha256: str | None = None, md5: str | None = None, timeout: float = 60.0, quiet: bool = False) -> dict:
    """Fetch ``url`` to ``dest`` (resumable, verified, atomic); returns the manifest entry."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.parent / f".{dest.name}.part"
    meta_path = dest.parent / f".{dest.name}.part.json"
    meta = {}
    if part.exists() and meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError:
            meta = {}
    if meta.get("url") != url:
        part.unlink(missing_ok=True)
        meta = {"url": url}
    offset = part.stat().st_size if part.exists() else 0
    resp = _open(url, offset, timeout)
    if offset and meta.get("etag") and resp.etag and resp.etag != meta["etag"]:
        # The remote file changed since the partial download: start over.
        if resp.stream:
            resp.stream.close()
        part.unlink(missing_ok=True)
        offset = 0
        resp = _open(url, 0, timeout)
    if resp.offset == 0 and offset:
        part.unlink(missing_ok=True)  # the server ignored the Range request
    meta.update({"etag": resp.etag or meta.get("etag"), "total": resp.total or meta.get("total")})
    meta["md5"] = md5 or meta.get("md5") or resp.md5
    atomic_write_json(meta_path, meta)
    received = resp.offset
    if resp.stream is not None:
        if not quiet and resp.offset:
            print(f"{dest.name}: resuming at {resp.offset / 1e6:.1f} MB", file=sys.stderr)
        t0 = t_print = time.monotonic()
        try:
            with open(part, "ab" if resp.offset else "wb") as out:
                while True:
                    block = resp.stream.read(BLOCK)
                    if not block:
                        break
                    out.write(block)
                    received += len(block)
                    now = time.monotonic()
                    if not quiet and now - t_print > 2.0:
                        t_print = now
                        tot = f" / {resp.total / 1e6:.1f} MB" if resp.total else " MB"
                        rate = (received - resp.offset) / max(now - t0, 1e-9) / 1e6
                        print(f"{dest.name}: {received / 1e6:.1f}{tot} ({rate:.1f} MB/s)", file=sys.stderr)
                out.flush()
                os.fsync(out.fileno())
        except (OSError, urllib.error.URLError) as e:
            raise DownloadError(
                f"{url}: transfer interrupted after {received:,} bytes ({e}); run the same command again to resume"
            ) from None
        finally:
            resp.stream.close()
    total = meta.get("total")
    if total is not None and received != total:
        raise DownloadError(
            f"{url}: incomplete, {received:,} of {total:,} bytes; run the same command again to resume"
        )
    digest, md5_got = _digests(part)
    verified = "size"
    if sha256:
        if digest != sha256.lower():
            part.unlink(missing_ok=True)
            meta_path.unlink(missing_ok=True)
            raise DownloadError(f"{url}: SHA-256 mismatch (got {digest}, expected {sha256}); the partial file was deleted")
        verified = "sha256 (pinned)"
    if meta.get("md5"):
        if md5_got != meta["md5"]:
            part.unlink(missing_ok=True)
            meta_path.unlink(missing_ok=True)
            raise DownloadError(f"{url}: MD5 mismatch (got {md5_got}, expected {meta['md5']}); the corrupt file was deleted, run again")
        verified = verified + " + md5" if verified != "size" else "md5"
    os.replace(part, dest)
    meta_path.unlink(missing_ok=True)
    fsync_dir(dest.parent)
    return {"bytes": dest.stat().st_size, "sha256": digest, "source": url, "verified": verified}


def _digests(path: Path) -> tuple[str, str]:
    """SHA-256 and MD5 of a file in one pass."""
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(BLOCK * 8):
            sha.update(block)
            md5.update(block)
    return sha.hexdigest(), md5.hexdigest()


def gunzip_atomic(src: Path, dest: Path) -> None:
    """Decompress ``src`` to ``dest``; ``dest`` appears only when complete."""
    tmp = dest.parent / f".{dest.name}.part"
    try:
        with gzip.open(src, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout, BLOCK * 4)
            fout.flush()
            os.fsync(fout.fileno())
        os.replace(tmp, dest)
        fsync_dir(dest.parent)
    except (OSError, EOFError, zlib.error) as e:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"{src}: cannot decompress ({e}); delete it and download again") from None


# ---------------------------------------------------------------------------- command
def fetch_all(files: list[Remote], directory: Path, *, timeout: float = 60.0, keep_gz: bool = False, force: bool = False, quiet: bool = False) -> dict:
    directory.mkdir(parents=True, exist_ok=True)
    manifest_path = directory / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    except ValueError:
        manifest = {}
    for f in files:
        final = directory / f.dest
        if final.exists() and not force:
            entry = manifest.get(f.dest)
            if entry and entry.get("bytes") == final.stat().st_size:
                if not quiet:
                    print(f"{final}: present ({entry['bytes']:,} bytes, sha256 {entry['sha256'][:12]}...)", file=sys.stderr)
                continue
        url = _url(f.base, f.name)
        md5 = _source_md5(f.base, f.name, timeout)
        target = directory / f.name if f.gunzip else final
        entry = None
        if f.gunzip and target.exists() and f.name in manifest and manifest[f.name].get("bytes") == target.stat().st_size and not force:
            entry = manifest[f.name]  # the archive is complete; only decompression is left
        if entry is None:
            entry = download(url, target, sha256=f.sha256, md5=md5, timeout=timeout, quiet=quiet)
            manifest[f.name if f.gunzip else f.dest] = entry
            atomic_write_json(manifest_path, manifest)
        if f.gunzip:
            if not quiet:
                print(f"{target.name}: decompressing to {final.name}", file=sys.stderr)
            gunzip_atomic(target, final)
            manifest[f.dest] = {"bytes": final.stat().st_size, "sha256": sha256_file(final), "source": f"gunzip {f.name}", "verified": "from verified archive"}
            if not keep_gz:
                target.unlink(missing_ok=True)
            atomic_write_json(manifest_path, manifest)
        if not quiet:
            print(f"{final}: {manifest[f.dest]['bytes']:,} bytes ({manifest.get(f.name, manifest[f.dest])['verified']})", file=sys.stderr)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="seqdiff download",
        description="Download a dataset (resumable, verified, atomic). hg38: the FASTA and BED of the HyenaDNA/Caduceus setup.",
    )
    parser.add_argument("dataset", choices=["hg38"])
    parser.add_argument("--dir", required=True, help="destination folder")
    parser.add_argument("--source", default=None, help="mirror: http(s)/file URL or local folder holding the same file names")
    parser.add_argument("--fasta", choices=["basenji", "ucsc"], default="basenji", help="hg38.ml.fa as HyenaDNA/Caduceus used (default), or UCSC's hg38.fa")
    parser.add_argument("--keep-gz", action="store_true", help="keep the .gz archive after decompressing")
    parser.add_argument("--force", action="store_true", help="download again even if the files are present")
    parser.add_argument("--timeout", type=float, default=60.0, help="network timeout in seconds")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    directory = Path(args.dir).expanduser()
    try:
        files = hg38_files(args.fasta, args.source)
        fetch_all(files, directory, timeout=args.timeout, keep_gz=args.keep_gz, force=args.force, quiet=args.quiet)
    except SeqdiffError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    fa, bed = directory / files[0].dest, directory / files[1].dest
    print(f"done. train with:\n  seqdiff train experiment=dna_hg38_mdlm data.fasta={fa} data.bed={bed}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
