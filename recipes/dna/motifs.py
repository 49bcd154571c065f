r"""Motif enrichment: transcription-factor motif hit rates in samples against real windows.

**Motifs** come from a MEME-format file (``MEME version 4``, ``letter-probability matrix``
blocks), a JASPAR-format file (``>ID name`` then ``A [ counts ]`` rows, or four bare rows)
or the JASPAR database bundled in the ``pyjaspar`` wheel (``pip install 'seqdiff[motifs]'``;
its sqlite files for JASPAR 2014-2026 ship inside the package, so nothing is downloaded).

**Scores** are the log-odds matrix as FIMO defines it (Grant et al. 2011; MEME suite
``--motif-pseudo 0.1`` spread by the background)

.. math:: S_{b,j} = \log_2 \frac{(c_{b,j} + \beta\, q_b) / (n_j + \beta)}{q_b}

for counts :math:`c`, column totals :math:`n_j`, background :math:`q` (uniform unless
given) and pseudocount :math:`\beta` (0.1 as in FIMO), rounded to integers at
``SCALE`` per bit (memelite's ``fimo`` differs in detail: 0.1-bit bins, pseudocount
1e-4); a window's score is the sum of its columns' entries, on both strands
(the reverse strand scores with the reverse-complemented matrix). **Threshold**: the
smallest integer score :math:`t` with :math:`P(S \ge t) \le` ``pvalue`` under i.i.d.
background bases, from the exact distribution of the integer score (a convolution over
columns), so a window of background sequence is a hit with probability at most
``pvalue`` (default 1e-4, FIMO's). Windows touching N are never hits. A motif shorter
than :math:`\log_4(1/p)` (6 bases or fewer at 1e-4) can never reach the threshold: the report
counts those (``motif_unreachable``).

**Report**: hits per kb (both strands counted, as FIMO lists them) in samples and in
held-out windows, and their ratio with 0.5 added to each hit count (so a motif absent
from one side has a finite ratio). Per-motif rates of small sample sets are noisy, so the
correlation of log rates across motifs (samples vs real windows) comes beside its floor:
the same correlation between two disjoint sets of real windows of the samples' size.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from seqdiff.errors import ConfigError, DataError

SCALE = 100  # integer score units per bit
PSEUDOCOUNT = 0.1
DEFAULT_PVALUE = 1e-4
UNIFORM = (0.25, 0.25, 0.25, 0.25)


@dataclass
class Motif:
    """A motif as counts ``[4, w]`` over A, C, G, T (probabilities times the site count)."""

    id: str
    name: str
    counts: np.ndarray

    @property
    def width(self) -> int:
        return int(self.counts.shape[1])


# --------------------------------------------------------------------------- parsing
_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def read_motifs(path: str | Path) -> list[Motif]:
    """Motifs of a MEME or JASPAR file (the format is recognised from the content)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"{p}: motif file not found (a MEME or JASPAR file; or motifs_file=jaspar for the bundled database)")
    text = p.read_text(errors="replace")
    motifs = read_meme(text, p) if re.search(r"^\s*MEME version", text, re.M) else read_jaspar(text, p)
    if not motifs:
        raise DataError(f"{p}: no motifs found (expected MEME 'MOTIF' blocks or JASPAR '>ID name' records)")
    return motifs


def read_meme(text: str, where: str | Path = "<meme>") -> list[Motif]:
    lines = text.splitlines()
    out: list[Motif] = []
    for n, line in enumerate(lines, 1):
        s = line.strip()
        if s.startswith("ALPHABET") and re.sub(r"\s", "", s.split("=", 1)[-1]).upper() not in ("ACGT", "ACGTN"):
            raise DataError(f"{where}:{n}: only the DNA alphabet ACGT is supported, got {s!r}")
    i = 0
    while i < len(lines):
        s = lines[i].strip()
        if not s.startswith("MOTIF"):
            i += 1
            continue
        parts = s.split()
        if len(parts) < 2:
            raise DataError(f"{where}:{i + 1}: MOTIF line without an identifier")
        mid, name = parts[1], (parts[2] if len(parts) > 2 else parts[1])
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith("letter-probability matrix"):
            if lines[j].strip().startswith("MOTIF"):
                raise DataError(f"{where}:{i + 1}: motif {mid} has no 'letter-probability matrix' block")
            j += 1
        if j == len(lines):
            raise DataError(f"{where}:{i + 1}: motif {mid} has no 'letter-probability matrix' block")
        head = lines[j]
        w = re.search(r"w=\s*(\d+)", head)
        nsites = re.search(r"nsites=\s*(" + _FLOAT + ")", head)
        alength = re.search(r"alength=\s*(\d+)", head)
        if alength and int(alength.group(1)) != 4:
            raise DataError(f"{where}:{j + 1}: alength={alength.group(1)}, expected 4 (A C G T)")
        rows, k = [], j + 1
        while k < len(lines) and (w is None or len(rows) < int(w.group(1))):
            s = lines[k].strip()
            if not s:
                if w is None and rows:
                    break
                k += 1
                continue
            vals = s.split()
            try:
                row = [float(v) for v in vals]
            except ValueError:
                if w is None and rows:
                    break
                raise DataError(f"{where}:{k + 1}: expected 4 probabilities for motif {mid}, got {s!r}") from None
            if len(row) != 4:
                raise DataError(f"{where}:{k + 1}: expected 4 probabilities for motif {mid}, got {len(row)}")
            if abs(sum(row) - 1.0) > 0.02 or min(row) < 0:
                raise DataError(f"{where}:{k + 1}: probabilities of motif {mid} must be >= 0 and sum to 1, got {row}")
            rows.append(row)
            k += 1
        if not rows or (w is not None and len(rows) != int(w.group(1))):
            raise DataError(f"{where}:{j + 1}: motif {mid} declares w={w.group(1) if w else '?'} but has {len(rows)} rows")
        sites = float(nsites.group(1)) if nsites and float(nsites.group(1)) > 0 else 20.0  # MEME's default site count
        out.append(Motif(mid, name, np.asarray(rows, dtype=np.float64).T * sites))
        i = k
    return out


def read_jaspar(text: str, where: str | Path = "<jaspar>") -> list[Motif]:
    out: list[Motif] = []
    header: tuple[str, str, int] | None = None
    rows: list[tuple[int, list[float]]] = []

    def close() -> None:
        if header is None:
            return
        mid, name, n = header
        if len(rows) != 4:
            raise DataError(f"{where}:{n}: motif {mid} has {len(rows)} count rows, expected 4 (A C G T)")
        widths = {len(r) for _, r in rows}
        if len(widths) != 1 or 0 in widths:
            raise DataError(f"{where}:{n}: motif {mid}: count rows of different lengths {sorted(widths)}")
        order = [b for b, _ in rows]
        counts = np.zeros((4, widths.pop()))
        for b, r in rows:
            counts[b] = r
        if sorted(order) != [0, 1, 2, 3]:
            raise DataError(f"{where}:{n}: motif {mid}: rows must be A, C, G, T once each")
        out.append(Motif(mid, name, counts))

    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s:
            continue
        if s.startswith(">"):
            close()
            parts = s[1:].split(None, 1)
            if not parts:
                raise DataError(f"{where}:{n}: '>' header without a motif identifier")
            header, rows = (parts[0], parts[1].strip() if len(parts) > 1 else parts[0], n), []
            continue
        if header is None:
            raise DataError(f"{where}:{n}: count row before the first '>ID name' header")
        m = re.fullmatch(r"([ACGTacgt])?\s*\[?\s*(.*?)\s*\]?", s)
        letter, body = m.group(1), m.group(2)
        try:
            vals = [float(v) for v in body.split()]
        except ValueError:
            raise DataError(f"{where}:{n}: expected counts for motif {header[0]}, got {s!r}") from None
        if any(v < 0 for v in vals):
            raise DataError(f"{where}:{n}: negative count in motif {header[0]}")
        b = "ACGT".index(letter.upper()) if letter else len(rows)
        if b > 3:
            raise DataError(f"{where}:{n}: motif {header[0]} has more than 4 count rows")
        rows.append((b, vals))
    close()
    return out


def jaspar_motifs(release: str = "JASPAR2024", collection: str = "CORE", tax_group: str | None = "vertebrates") -> list[Motif]:
    """Motifs of the JASPAR database bundled in the ``pyjaspar`` wheel (no network)."""
    try:
        from pyjaspar import jaspardb
    except ImportError:
        raise ConfigError("motifs_file=jaspar needs the pyjaspar package (pip install 'seqdiff[motifs]'), "
                          "or give a MEME/JASPAR file: motifs_file=/path/motifs.meme") from None
    db = jaspardb(release=release)
    if getattr(db, "conn", None) is None:
        raise ConfigError(f"motifs_file=jaspar:{release}: unknown release (pyjaspar has {', '.join(db.get_releases())})")
    found = db.fetch_motifs(collection=collection, tax_group=[tax_group] if tax_group else None)
    return [Motif(m.matrix_id, m.name, np.array([list(m.counts[b]) for b in "ACGT"], dtype=np.float64)) for m in found]


def load_motifs(spec: str) -> list[Motif]:
    """``jaspar[:RELEASE[:TAX_GROUP]]`` (the bundled database; TAX_GROUP ``all`` for every
    group) or a path to a MEME/JASPAR file."""
    if spec == "jaspar" or spec.startswith("jaspar:"):
        parts = spec.split(":")
        release = parts[1] if len(parts) > 1 and parts[1] else "JASPAR2024"
        tax = parts[2] if len(parts) > 2 and parts[2] else "vertebrates"
        return jaspar_motifs(release, tax_group=None if tax == "all" else tax)
    return read_motifs(spec)


# --------------------------------------------------------------------------- scoring
def integer_pwm(motif: Motif, background: Sequence[float] = UNIFORM, pseudocount: float = PSEUDOCOUNT) -> np.ndarray:
    """Log-odds matrix ``[4, w]`` in integer units of 1/SCALE bit (module docstring)."""
    q = np.asarray(background, dtype=np.float64)[:, None]
    c = motif.counts
    p = (c + pseudocount * q) / (c.sum(0, keepdims=True) + pseudocount)
    return np.rint(np.log2(p / q) * SCALE).astype(np.int64)


def score_distribution(pwm: np.ndarray, background: Sequence[float] = UNIFORM) -> tuple[int, np.ndarray]:
    """Exact law of the integer score of one background window: ``(offset, probs)`` with
    ``probs[s - offset] = P(S = s)``."""
    q = np.asarray(background, dtype=np.float64)
    lo = int(pwm.min(0).sum())
    dist = np.zeros(int(pwm.max(0).sum()) - lo + 1)
    dist[0] = 1.0
    base = 0
    for j in range(pwm.shape[1]):
        col = pwm[:, j]
        new = np.zeros_like(dist)
        m = int(col.min())
        for b in range(4):
            shift = int(col[b]) - m
            new[shift:] += q[b] * dist[: len(dist) - shift]
        dist = new
        base += m
    return base, dist


def threshold(pwm: np.ndarray, pvalue: float = DEFAULT_PVALUE, background: Sequence[float] = UNIFORM) -> int:
    """Smallest integer score ``t`` with ``P(S >= t) <= pvalue`` (above the maximum: no hits)."""
    offset, dist = score_distribution(pwm, background)
    tail = np.cumsum(dist[::-1])[::-1]  # tail[i] = P(S >= offset + i)
    ok = np.flatnonzero(tail <= pvalue)
    return offset + int(ok[0]) if len(ok) else offset + len(dist)


def reverse_complement_pwm(pwm: np.ndarray) -> np.ndarray:
    return pwm[::-1, ::-1].copy()  # rows A C G T -> T G C A, columns reversed


class MotifScanner:
    """Integer log-odds matrices, both strands, with their exact ``pvalue`` thresholds,
    prepared once for a motif set; :meth:`count` scans code rows.

    Motifs are sorted by width and ``chunk`` of them share one convolution (matrices
    zero-padded on the right to the widest of the chunk; the input is padded with N, so a
    window running off the end is never a hit). Scores are integer sums below 2^24, so
    float32 is exact.
    """

    def __init__(self, motifs: Sequence[Motif], *, pvalue: float = DEFAULT_PVALUE,
                 background: Sequence[float] = UNIFORM, chunk: int = 32) -> None:
        self.motifs = list(motifs)
        self.pvalue = float(pvalue)
        pwms = [integer_pwm(m, background) for m in self.motifs]
        self.thresholds = np.array([threshold(p, pvalue, background) for p in pwms], dtype=np.int64)
        best = np.array([int(p.max(0).sum()) for p in pwms], dtype=np.int64)
        #: motifs whose best word has p > pvalue (4^-w > pvalue for w short): never a hit
        self.unreachable = int((self.thresholds > best).sum())
        order = sorted(range(len(pwms)), key=lambda k: pwms[k].shape[1])
        self.groups = []
        for c0 in range(0, len(order), chunk):
            ids = order[c0 : c0 + chunk]
            W = max(pwms[k].shape[1] for k in ids)
            weight = torch.zeros(2 * len(ids), 4, W)
            span = torch.zeros(len(ids), 1, W)
            for j, k in enumerate(ids):
                w = pwms[k].shape[1]
                weight[2 * j, :, :w] = torch.from_numpy(pwms[k].astype(np.float32))
                weight[2 * j + 1, :, :w] = torch.from_numpy(reverse_complement_pwm(pwms[k]).astype(np.float32))
                span[j, 0, :w] = 1.0
            t = torch.from_numpy(np.repeat(self.thresholds[ids], 2).astype(np.float32))[:, None]
            self.groups.append((ids, weight, span, t))

    def count(self, codes: torch.Tensor | np.ndarray) -> np.ndarray:
        """Hits ``[K]`` of each motif over all rows of ``codes [M, L]`` (0..3 A/C/G/T, 4 other), both strands."""
        x = torch.as_tensor(np.asarray(codes), dtype=torch.long).clamp(min=0, max=4)
        M, L = x.shape
        out = np.zeros(len(self.motifs), dtype=np.int64)
        if not self.motifs or M == 0:
            return out
        W = max(g[1].shape[2] for g in self.groups)
        xp = torch.cat([x, torch.full((M, W - 1), 4, dtype=torch.long)], 1)
        onehot = F.one_hot(xp, 5).permute(0, 2, 1).float()  # [M, 5, L + W - 1]; channel 4: N / other / past the end
        for ids, weight, span, t in self.groups:
            w = weight.shape[2]
            inp = onehot[:, :, : L + w - 1]
            s = F.conv1d(inp[:, :4], weight)  # [M, 2K, L]
            bad = F.conv1d(inp[:, 4:5], span) > 0  # [M, K, L]: the window touches N or runs off the end
            hit = (s >= t[None]) & ~bad.repeat_interleave(2, dim=1)
            out[ids] = hit.reshape(M, len(ids), 2, L).sum((0, 2, 3)).numpy()
        return out


def count_hits(codes: torch.Tensor | np.ndarray, motifs: Sequence[Motif], *, pvalue: float = DEFAULT_PVALUE,
               background: Sequence[float] = UNIFORM) -> np.ndarray:
    """Hits ``[K]`` of each motif over all rows of ``codes [M, L]``, both strands (:class:`MotifScanner`)."""
    return MotifScanner(motifs, pvalue=pvalue, background=background).count(codes)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def enrichment(samples: np.ndarray, real_a: np.ndarray, real_b: np.ndarray, scanner: MotifScanner) -> dict:
    """Per-motif hit rates of samples vs held-out windows ``b``, and the rate correlation
    beside its real-vs-real floor (``a`` vs ``b``, disjoint, of the samples' size)."""
    hs, ha, hb = (scanner.count(c) for c in (samples, real_a, real_b))
    bs, ba, bb = (max(int((np.asarray(c) < 4).sum()), 1) for c in (samples, real_a, real_b))
    ratio = ((hs + 0.5) / bs) / ((hb + 0.5) / bb)
    floor_ratio = ((ha + 0.5) / ba) / ((hb + 0.5) / bb)
    log = lambda h, n: np.log((h + 0.5) / n)  # noqa: E731
    names = [f"{m.id} {m.name}" if m.name != m.id else m.id for m in scanner.motifs]
    return {
        "motif_hits_per_kb": dict(zip(names, (hs * 1000.0 / bs).tolist())),
        "motif_hits_per_kb_real": dict(zip(names, (hb * 1000.0 / bb).tolist())),
        "motif_samples_over_real": dict(zip(names, ratio.tolist())),
        "motif_rate_log_correlation": _corr(log(hs, bs), log(hb, bb)),
        "motif_rate_log_correlation_floor": _corr(log(ha, ba), log(hb, bb)),
        "motif_median_abs_log2_ratio": float(np.median(np.abs(np.log2(ratio)))) if len(ratio) else math.nan,
        "motif_median_abs_log2_ratio_floor": float(np.median(np.abs(np.log2(floor_ratio)))) if len(ratio) else math.nan,
        "motif_count": len(scanner.motifs),
        "motif_unreachable": scanner.unreachable,
        "motif_pvalue": scanner.pvalue,
    }
