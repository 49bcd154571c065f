"""Region infilling: chr:start-end of a FASTA with its middle masked, as a core Condition."""

from __future__ import annotations

import pytest
import torch

from support.genome import write_fasta
from seqdiff_recipes.dna import DNADomain
from seqdiff_recipes.dna.augment import reverse_complement
from seqdiff_recipes.dna.conditioning import infill_span, parse_region
from seqdiff.cli.condition import condition_from_config
from seqdiff.errors import ConfigError, DataError

D = DNADomain()


def test_parse_region_is_samtools_style():
    assert parse_region("chr1:1-100") == ("chr1", 0, 100)
    assert parse_region("chrX:1,001-2,000") == ("chrX", 1000, 2000)
    for bad in ("chr1", "chr1:0-10", "chr1:50-10", "chr1:a-b"):
        with pytest.raises(ConfigError):
            parse_region(bad)


def test_infill_span():
    assert infill_span(100, None, 0, "+") == (25, 75)
    assert infill_span(100, 10, 0, "+") == (45, 55)
    assert infill_span(100, "1041-1050", 1000, "+") == (40, 50)
    assert infill_span(100, "1041-1050", 1000, "-") == (50, 60)
    with pytest.raises(ConfigError):
        infill_span(100, "900-950", 1000, "+")


@pytest.fixture
def fasta(tmp_path):
    return write_fasta(tmp_path / "g.fa", {"chr1": 2000, "chr2": 500})


def test_region_condition_fixes_the_flanks(fasta):
    cond = {"region": "chr1:101-200", "fasta": str(fasta), "infill": 40}
    c = condition_from_config(D, cond, 64)
    text = open(fasta).read().split(">")[1].split("\n", 1)[1].replace("\n", "")[100:200].upper()
    assert c.length == 100
    assert c.fixed.tolist() == [True] * 30 + [False] * 40 + [True] * 30
    assert D.decode(c.tokens[c.fixed]) == text[:30] + text[70:]


def test_region_on_the_minus_strand_and_motif(fasta):
    cond = {"region": "chr2:1-60", "fasta": str(fasta), "strand": "-", "motif": "TATA", "motif_at": 28}
    c = condition_from_config(D, cond, 64)
    seq = open(fasta).read().split(">chr2")[1].split("\n", 1)[1].replace("\n", "")[:60]
    rc = reverse_complement(seq).upper()
    assert D.decode(c.tokens[:15]) == rc[:15]
    assert D.decode(c.tokens[28:32]) == "TATA" and c.fixed[28:32].all() and not c.fixed[15:28].any()


def test_region_errors(fasta):
    with pytest.raises(ConfigError, match="needs condition.fasta"):
        condition_from_config(D, {"region": "chr1:1-10"}, 10)
    with pytest.raises(DataError, match="no record named 'chr9'"):
        condition_from_config(D, {"region": "chr9:1-10", "fasta": str(fasta)}, 10)
    with pytest.raises(DataError, match="runs past the end"):
        condition_from_config(D, {"region": "chr2:400-600", "fasta": str(fasta)}, 10)
    with pytest.raises(ConfigError, match="drop condition.left"):
        condition_from_config(D, {"region": "chr2:1-60", "fasta": str(fasta), "left": "ACGT"}, 10)
    from seqdiff_recipes.alphabet import AlphabetDomain

    with pytest.raises(ConfigError, match="cannot read regions"):
        condition_from_config(AlphabetDomain("ACGT"), {"region": "chr2:1-60"}, 10)


def test_flank_condition_still_works_generically():
    c = condition_from_config(D, {"left": "ACGT", "right": "GG"}, 10)
    assert c.fixed.tolist() == [True] * 4 + [False] * 4 + [True] * 2
    assert torch.equal(c.tokens[-2:], torch.tensor([2, 2]))
