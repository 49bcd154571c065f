"""Motif files, exact score thresholds and PWM scanning against brute force on planted sites."""

from __future__ import annotations

import itertools
import sys

import numpy as np
import pytest

from seqdiff.errors import ConfigError, DataError
from seqdiff_recipes.dna import motifs as mt
from seqdiff_recipes.dna.memorisation import encode

MEME = """MEME version 4

ALPHABET= ACGT

strands: + -

Background letter frequencies
A 0.25 C 0.25 G 0.25 T 0.25

MOTIF MA0001.1 TEST1
letter-probability matrix: alength= 4 w= 3 nsites= 10 E= 0
  1.0 0.0 0.0 0.0
  0.0 0.5 0.5 0.0
  0.1 0.2 0.3 0.4
URL http://example.org

MOTIF M2
letter-probability matrix: alength= 4 w= 2
 0.25 0.25 0.25 0.25
 0 0 0 1
"""

JASPAR = """>MA0004.1 Arnt
A  [     4     19      0      0      0      0 ]
C  [    16      0     20      0      0      0 ]
G  [     0      1      0     20      0     20 ]
T  [     0      0      0      0     20      0 ]
>MA9999.1
1 2 3
4 5 6
7 8 9
0 0 1
"""


def test_meme_file(tmp_path):
    p = tmp_path / "m.meme"
    p.write_text(MEME)
    ms = mt.read_motifs(p)
    assert [(m.id, m.name, m.width) for m in ms] == [("MA0001.1", "TEST1", 3), ("M2", "M2", 2)]
    assert ms[0].counts[:, 1].tolist() == [0.0, 5.0, 5.0, 0.0]  # probabilities x nsites
    assert ms[1].counts.sum(0).tolist() == [20.0, 20.0]  # no nsites: MEME's default 20
    bad = MEME.replace("  0.1 0.2 0.3 0.4\n", "")
    p.write_text(bad)
    with pytest.raises(DataError, match=r"m\.meme:\d+: motif MA0001\.1 declares w=3|expected 4 probabilities"):
        mt.read_motifs(p)
    p.write_text(MEME.replace("0.1 0.2 0.3 0.4", "0.1 0.2 0.3 0.9"))
    with pytest.raises(DataError, match=r"m\.meme:14: probabilities of motif MA0001\.1 must be >= 0 and sum to 1"):
        mt.read_motifs(p)
    p.write_text(MEME.replace("ALPHABET= ACGT", "ALPHABET= ACDEFGHIKLMNPQRSTVWY"))
    with pytest.raises(DataError, match=r"m\.meme:3: only the DNA alphabet"):
        mt.read_motifs(p)


def test_jaspar_file(tmp_path):
    p = tmp_path / "m.jaspar"
    p.write_text(JASPAR)
    ms = mt.read_motifs(p)
    assert [(m.id, m.name, m.width) for m in ms] == [("MA0004.1", "Arnt", 6), ("MA9999.1", "MA9999.1", 3)]
    assert ms[0].counts[:, 0].tolist() == [4, 16, 0, 0]
    assert ms[1].counts[3].tolist() == [0, 0, 1]
    p.write_text(JASPAR.replace("T  [     0      0      0      0     20      0 ]\n", ""))
    with pytest.raises(DataError, match=r"m\.jaspar:1: motif MA0004\.1 has 3 count rows"):
        mt.read_motifs(p)
    p.write_text("A [ 1 2 ]\n")
    with pytest.raises(DataError, match=r"m\.jaspar:1: count row before the first"):
        mt.read_motifs(p)
    with pytest.raises(DataError, match="motif file not found"):
        mt.read_motifs(tmp_path / "missing.meme")


def _score(pwm: np.ndarray, word) -> int:
    return int(sum(pwm[b, j] for j, b in enumerate(word)))


@pytest.mark.parametrize("background", [mt.UNIFORM, (0.3, 0.2, 0.2, 0.3)])
def test_threshold_is_exact_by_enumeration(background):
    motif = mt.Motif("x", "x", np.array([[8, 0, 1, 0], [1, 6, 0, 2], [0, 1, 7, 0], [1, 3, 2, 8]], dtype=float))
    pwm = mt.integer_pwm(motif, background)
    law: dict[int, float] = {}
    for word in itertools.product(range(4), repeat=4):
        s = _score(pwm, word)
        law[s] = law.get(s, 0.0) + float(np.prod([background[b] for b in word]))
    offset, dist = mt.score_distribution(pwm, background)
    assert {offset + i: p for i, p in enumerate(dist) if p > 0} == pytest.approx(law, abs=1e-15)
    for p in (0.2, 0.01, 1e-3):
        t = mt.threshold(pwm, p, background)
        tail = lambda u: sum(v for s, v in law.items() if s >= u)  # noqa: E731
        assert tail(t) <= p < tail(t - 1)


def test_scan_counts_planted_sites_like_brute_force():
    rng = np.random.default_rng(0)
    consensus = "GGGATTACA"  # far from its own reverse complement (TGTAATCCC)
    counts = np.full((4, len(consensus)), 0.5)
    for j, c in enumerate(consensus):
        counts["ACGT".index(c), j] = 18.0
    motif = mt.Motif("P1", "planted", counts)
    rows, planted = [], 0
    for r in range(60):
        s = list(rng.choice(list("ACGT"), 120))
        if r % 2 == 0:
            site = consensus if r % 4 == 0 else consensus.translate(str.maketrans("ACGT", "TGCA"))[::-1]
            at = int(rng.integers(0, 120 - len(consensus)))
            s[at : at + len(consensus)] = site
            planted += 1
        rows.append("".join(s))
    rows[2] = rows[2][:115] + "N" + rows[2][116:]  # a row with an N somewhere
    codes = np.stack([encode(s) for s in rows])
    pwm = mt.integer_pwm(motif)
    t = mt.threshold(pwm, 1e-4)
    rc = mt.reverse_complement_pwm(pwm)
    brute = 0
    for row in codes:
        for a in range(len(row) - pwm.shape[1] + 1):
            w = row[a : a + pwm.shape[1]]
            if (w < 4).all():
                brute += (_score(pwm, w) >= t) + (_score(rc, w) >= t)
    got = int(mt.count_hits(codes, [motif], pvalue=1e-4)[0])
    assert got == brute
    assert planted <= got <= planted + 3  # every planted site, almost no background hits at p = 1e-4
    # a site touching N is not a hit
    n_row = encode("A" * 20 + consensus[:-1] + "N" + "A" * 20)[None, :]
    assert mt.count_hits(n_row, [motif])[0] == 0
    assert mt.count_hits(encode("A" * 20 + consensus + "A" * 20)[None, :], [motif])[0] == 1
    # enrichment of the planted rows against unplanted "real" windows
    real = np.stack([encode("".join(rng.choice(list("ACGT"), 120))) for _ in range(120)])
    scanner = mt.MotifScanner([mt.Motif("flat", "flat", np.full((4, 6), 5.0)), motif, mt.Motif("w3", "w3", counts[:, :3])])
    assert scanner.count(codes).tolist() == [0, got, 0]  # grouped by width, reported in the given order
    e = mt.enrichment(codes, real[:60], real[60:], scanner)
    assert e["motif_samples_over_real"]["P1 planted"] > 10
    assert e["motif_hits_per_kb"]["P1 planted"] == pytest.approx(got * 1000 / int((codes < 4).sum()))
    assert e["motif_count"] == 3 and e["motif_unreachable"] == 2 and "motif_rate_log_correlation_floor" in e


def test_jaspar_database_from_the_pyjaspar_wheel():
    pytest.importorskip("pyjaspar", reason="optional: pip install 'seqdiff[motifs]'")
    ms = mt.load_motifs("jaspar")
    assert len(ms) > 500 and all(m.counts.shape[0] == 4 for m in ms)
    arnt = next(m for m in ms if m.id.startswith("MA0004"))
    assert arnt.name == "Arnt" and arnt.counts[:, 0].tolist() == [4, 16, 0, 0]


def test_missing_pyjaspar_is_a_clear_config_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyjaspar", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'seqdiff\[motifs\]'"):
        mt.load_motifs("jaspar")
