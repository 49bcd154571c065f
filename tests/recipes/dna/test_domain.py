"""DNADomain: the quickstart's 7-id vocabulary, soft-mask and IUPAC options, BOS/EOS."""

from __future__ import annotations

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from seqdiff_recipes.alphabet import AlphabetDomain
from seqdiff_recipes.dna import DNADomain
from seqdiff_recipes.dna.domain import byte_table
from seqdiff.cli.main import config_dir
from seqdiff.errors import ConfigError, DataError
from seqdiff.utils.instantiate import instantiate

QUICKSTART = dict(alphabet="ACGTN", name="dna", uppercase=True, complement={"A": "T", "C": "G", "G": "C", "T": "A", "N": "N"})


def test_same_vocabulary_as_the_quickstart_domain():
    old = AlphabetDomain(**QUICKSTART)
    new = DNADomain()
    assert new.vocab == old.vocab
    assert new.vocab.describe_difference(old.vocab) is None
    assert [new.ids[t] for t in "ACGTN"] == [0, 1, 2, 3, 4]
    assert (new.vocab.mask_id, new.vocab.pad_id, new.vocab.size) == (5, 6, 7)
    assert new.vocab.complement == (3, 2, 1, 0, 4, 5, 6)


def test_dna_yaml_builds_dna_domain_with_that_vocabulary():
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config")
    dom = instantiate(OmegaConf.to_container(cfg.domain, resolve=True), section="domain")
    assert isinstance(dom, DNADomain)
    assert dom.vocab == AlphabetDomain(**QUICKSTART).vocab


def test_default_encoding_matches_alphabet_domain():
    old, new = AlphabetDomain(**QUICKSTART), DNADomain()
    text = "ACGTNacgtnGATTACA"
    assert new.encode(text) == old.encode(text)
    assert new.decode(new.encode(text)) == text.upper()
    assert np.array_equal(byte_table(old), byte_table(new))  # generic probe == DNA's own table


def test_softmask_and_iupac_options():
    with pytest.raises(DataError, match=r"where: character 'g' at position 2 is a lower-case \(soft-masked\) base.*uppercase=true"):
        DNADomain(uppercase=False).encode("ACgT", where="where")
    with pytest.raises(DataError, match=r"character 'Y' at position 3 is an IUPAC ambiguity code.*iupac=to_n"):
        DNADomain().encode("ACGY")
    assert DNADomain(iupac="to_n").encode("RYSWKMBDHVn") == [4] * 11
    assert DNADomain(iupac="N").iupac == "to_n"
    with pytest.raises(DataError, match=r"character '-' at position 1 is not a DNA base"):
        DNADomain(iupac="to_n").encode("A-")
    with pytest.raises(DataError, match="position 1"):
        DNADomain().encode("Aé")
    assert DNADomain.softmask_channel("ACgtN") == [False, False, True, True, False]


def test_bos_eos_are_extra_ids_never_generated():
    d = DNADomain(bos=True, eos=True)
    assert d.vocab.tokens[:7] == DNADomain().vocab.tokens
    assert (d.bos_id, d.eos_id) == (7, 8)
    assert {7, 8} <= set(d.vocab.never_generate)
    assert d.vocab.complement[7] == 7 and d.vocab.complement[8] == 8
    assert DNADomain(eos=True).eos_id == 7


def test_bad_options():
    with pytest.raises(ConfigError, match="iupac must be"):
        DNADomain(iupac="maybe")
    with pytest.raises(ConfigError, match="complement map"):
        DNADomain(alphabet="ACGU")
