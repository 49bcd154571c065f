"""Small synthetic genomes for the DNA tests: FASTA (plain/BGZF), BED, GenBank.

Sequences come from a seeded order-2 Markov chain with GC bias, CpG depletion and
soft-masked (lower-case) stretches, so a tiny model has something to learn and the
sample statistics have something to compare. Nothing here reads ../shared or the network.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

BASES = np.frombuffer(b"ACGT", dtype=np.uint8)


def random_dna(n: int, seed: int = 0, *, softmask: float = 0.1, n_runs: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    # order-2 transition table: a Dirichlet row per context, CpG made rare.
    probs = rng.dirichlet(np.full(4, 0.7), size=16)
    for ctx in range(16):
        if ctx % 4 == 1:  # previous base C -> G is depleted
            probs[ctx, 2] *= 0.2
            probs[ctx] /= probs[ctx].sum()
    cum = probs.cumsum(1)
    u = rng.random(n)
    out = np.empty(n, dtype=np.int64)
    a, b = 0, 1
    for i in range(n):
        c = int(np.searchsorted(cum[a * 4 + b], u[i]))
        out[i] = min(c, 3)
        a, b = b, out[i]
    seq = BASES[out].copy()
    # soft-masked stretches of 50-300 bases
    pos = 0
    while softmask > 0 and pos < n:
        pos += int(rng.integers(200, 2000))
        ln = int(rng.integers(50, 300))
        seq[pos : pos + ln] = seq[pos : pos + ln] + 32  # lower case
        pos += ln
    for _ in range(n_runs):
        s = int(rng.integers(0, max(1, n - 100)))
        seq[s : s + int(rng.integers(20, 100))] = ord("N")
    return seq.tobytes()


def write_fasta(path: Path, records: dict[str, int | bytes | str], *, width: int = 60, seed: int = 0, newline: bytes = b"\n", **kw) -> Path:
    path = Path(path)
    with open(path, "wb") as f:
        for i, (name, spec) in enumerate(records.items()):
            seq = random_dna(spec, seed + i, **kw) if isinstance(spec, int) else (spec.encode() if isinstance(spec, str) else spec)
            f.write(b">" + name.encode() + b" synthetic record" + newline)
            for j in range(0, len(seq), width):
                f.write(seq[j : j + width] + newline)
    return path


def write_bgzf(path: Path, records: dict[str, int], **kw) -> Path:
    from Bio import bgzf

    plain = write_fasta(Path(str(path) + ".tmp"), records, **kw)
    with open(plain, "rb") as fin, bgzf.BgzfWriter(str(path), "wb") as fout:
        fout.write(fin.read())
    plain.unlink()
    return Path(path)


def write_bed(path: Path, rows: list[tuple], *, sep: str = "\t") -> Path:
    Path(path).write_text("".join(sep.join(str(c) for c in row) + "\n" for row in rows))
    return Path(path)


def tiny_genome(directory: Path, *, lengths: dict[str, int] | None = None, seed: int = 0, step: int = 4000) -> tuple[Path, Path]:
    """A 3-record genome and a BED with train/valid/test rows (Basenji-style, 4 columns):
    consecutive ``step``-bp rows, every 5th valid and every 5th (shifted) test."""
    lengths = lengths or {"chr1": 40_000, "chr2": 30_000, "chr3": 20_000}
    fa = write_fasta(Path(directory) / "genome.fa", lengths, seed=seed, n_runs=2)
    rows = []
    for name, n in lengths.items():
        for k, s in enumerate(range(0, n - step + 1, step)):
            split = "valid" if k % 5 == 3 else "test" if k % 5 == 4 else "train"
            rows.append((name, s, s + step, split))
    bed = write_bed(Path(directory) / "regions.bed", rows)
    return fa, bed


def config_fixture(tmp_path: Path) -> list[str]:
    """For tests/configs/test_configs.py's DATA_FIXTURES["seqdiff_recipes.dna.FastaData"]: a genome and
    BED in ``tmp_path`` and the overrides pointing the data config at them."""
    fa, bed = tiny_genome(tmp_path, lengths={"chr1": 6000, "chr2": 4000}, step=1000)
    return [f"data.fasta={fa}", f"data.bed={bed}", f"data.index_dir={tmp_path / 'cache'}"]
