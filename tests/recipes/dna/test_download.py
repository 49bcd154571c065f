"""``seqdiff download hg38`` against a local HTTP server on 127.0.0.1 and a file:// source:
resume after an interrupted transfer, MD5 verification, atomic files, offline error."""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.server
import json
import socket
import threading
from pathlib import Path

import pytest

from support.genome import tiny_genome
from seqdiff_recipes.dna.download import main

FILES = ("hg38.ml.fa.gz", "sequences_human.bed")


@pytest.fixture
def source(tmp_path):
    """A mirror folder holding the two hg38 files (a tiny genome standing in)."""
    src = tmp_path / "mirror"
    src.mkdir()
    fa, bed = tiny_genome(tmp_path)
    (src / "hg38.ml.fa.gz").write_bytes(gzip.compress(fa.read_bytes()))
    (src / "sequences_human.bed").write_bytes(bed.read_bytes())
    return src, fa, bed


class Handler(http.server.BaseHTTPRequestHandler):
    root: Path
    cut_after: dict  # name -> bytes to send before dropping the connection (once)
    bad_md5: set = set()
    log: list

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        name = self.path.lstrip("/")
        path = self.root / name
        self.log.append((name, self.headers.get("Range")))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        md5 = hashlib.md5(b"corrupt" if name in self.bad_md5 else data).digest()
        self.send_header("x-goog-hash", "crc32c=AAAAAA==")
        self.send_header("x-goog-hash", "md5=" + base64.b64encode(md5).decode())
        self.send_header("ETag", '"v1"')
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        cut = self.cut_after.pop(name, None)
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)


@pytest.fixture
def server(source):
    src = source[0]
    handler = type("H", (Handler,), {"root": src, "cut_after": {}, "bad_md5": set(), "log": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()


def test_download_from_local_http_server(tmp_path, source, server, capsys):
    url, handler = server
    _, fa, bed = source
    out = tmp_path / "hg38"
    assert main(["hg38", "--dir", str(out), "--source", url, "--quiet"]) == 0
    assert (out / "hg38.ml.fa").read_bytes() == fa.read_bytes()
    assert (out / "human-sequences.bed").read_bytes() == bed.read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["hg38.ml.fa", "human-sequences.bed", "manifest.json"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["hg38.ml.fa.gz"]["verified"] == "md5"
    assert manifest["human-sequences.bed"]["sha256"] == hashlib.sha256(bed.read_bytes()).hexdigest()
    assert "experiment=dna_hg38_mdlm" in capsys.readouterr().out
    # a second run finds everything present and fetches nothing
    n = len(handler.log)
    assert main(["hg38", "--dir", str(out), "--source", url, "--quiet"]) == 0
    assert len(handler.log) == n


def test_interrupted_download_resumes_with_range(tmp_path, source, server, capsys):
    url, handler = server
    out = tmp_path / "hg38"
    handler.cut_after["hg38.ml.fa.gz"] = 10_000
    assert main(["hg38", "--dir", str(out), "--source", url, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "run the same command again to resume" in err and err.count("\n") == 1
    # nothing under a final name, the partial file kept for resuming
    assert not (out / "hg38.ml.fa.gz").exists() and not (out / "hg38.ml.fa").exists()
    assert (out / ".hg38.ml.fa.gz.part").stat().st_size == 10_000
    assert main(["hg38", "--dir", str(out), "--source", url, "--quiet"]) == 0
    assert ("hg38.ml.fa.gz", "bytes=10000-") in handler.log
    assert (out / "hg38.ml.fa").read_bytes() == source[1].read_bytes()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_checksum_mismatch_deletes_and_reports(tmp_path, server, capsys):
    url, handler = server
    handler.bad_md5.add("sequences_human.bed")
    out = tmp_path / "hg38"
    assert main(["hg38", "--dir", str(out), "--source", url, "--quiet"]) == 2
    assert "MD5 mismatch" in capsys.readouterr().err
    assert not (out / "human-sequences.bed").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".human")]


def test_file_source_and_md5sum_txt(tmp_path, source):
    src, fa, _ = source
    (src / "md5sum.txt").write_text(f"{hashlib.md5((src / 'sequences_human.bed').read_bytes()).hexdigest()}  sequences_human.bed\n")
    out = tmp_path / "hg38"
    assert main(["hg38", "--dir", str(out), "--source", src.as_uri(), "--quiet", "--keep-gz"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["human-sequences.bed"]["verified"] == "md5"
    assert (out / "hg38.ml.fa.gz").exists() and (out / "hg38.ml.fa").read_bytes() == fa.read_bytes()
    # a plain folder path works as a source too
    out2 = tmp_path / "hg38b"
    assert main(["hg38", "--dir", str(out2), "--source", str(src), "--quiet"]) == 0


def test_wrong_md5sum_txt_is_caught(tmp_path, source, capsys):
    src, _, _ = source
    (src / "md5sum.txt").write_text("0" * 32 + "  sequences_human.bed\n")
    assert main(["hg38", "--dir", str(tmp_path / "o"), "--source", str(src), "--quiet"]) == 2
    assert "MD5 mismatch" in capsys.readouterr().err


def test_offline_is_one_clear_line(tmp_path, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rc = main(["hg38", "--dir", str(tmp_path / "o"), "--source", f"http://127.0.0.1:{port}", "--quiet", "--timeout", "5"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: cannot reach 127.0.0.1") and "--source" in err and err.count("\n") == 1


def test_cli_forwards_download(tmp_path, source):
    from seqdiff.cli.main import main as cli

    assert cli(["download", "hg38", "--dir", str(tmp_path / "o"), "--source", str(source[0]), "--quiet"]) == 0
    assert (tmp_path / "o" / "hg38.ml.fa").exists()


def test_corrupt_archive_is_not_decompressed_into_place(tmp_path, source, capsys):
    src, _, _ = source
    data = (src / "hg38.ml.fa.gz").read_bytes()
    (src / "hg38.ml.fa.gz").write_bytes(data[: len(data) // 2])
    assert main(["hg38", "--dir", str(tmp_path / "o"), "--source", str(src), "--quiet"]) == 2
    assert "cannot decompress" in capsys.readouterr().err
    assert not (tmp_path / "o" / "hg38.ml.fa").exists()
    assert not [p for p in (tmp_path / "o").iterdir() if p.name.endswith(".part")]
