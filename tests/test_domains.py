"""Every recipe is written against the contracts of seqdiff/domains.py and seqdiff/data.py,
its optional capabilities declared (subclassing a mixin, a class attribute), not probed."""

from __future__ import annotations

import pytest

from seqdiff.data import DataSource, PairedSource
from seqdiff.domains import Domain, RegionDomain
from seqdiff_recipes.alphabet import AlphabetDomain
from seqdiff_recipes.dna.data import FastaData
from seqdiff_recipes.dna.domain import DNADomain
from seqdiff_recipes.records import RecordData
from seqdiff_recipes.synthetic import MarkovData
from seqdiff_recipes.text.data import TextData
from seqdiff_recipes.text.domain import TextDomain
from seqdiff_recipes.text.pairs import PairData
from seqdiff_recipes.text.zero_shot import ZeroShotText
from seqdiff_recipes.windows import WindowData


@pytest.mark.parametrize("cls,region,artifacts", [
    (AlphabetDomain, False, False), (DNADomain, True, False), (TextDomain, False, True),
])
def test_recipe_domains_declare_their_capabilities(cls, region, artifacts):
    assert issubclass(cls, Domain)
    assert issubclass(cls, RegionDomain) == region
    assert cls.uses_artifacts == artifacts


@pytest.mark.parametrize("cls", [WindowData, MarkovData, FastaData, RecordData, TextData, PairData, ZeroShotText])
def test_recipe_data_sources_implement_the_contract(cls):
    assert issubclass(cls, DataSource) and not getattr(cls, "__abstractmethods__", None)
    assert issubclass(cls, PairedSource) == (cls is PairData)


def test_a_domain_round_trips_and_batches_are_batches():
    d = DNADomain()
    assert d.decode(d.encode("ACGTN")) == "ACGTN" and d.describe()["name"] == "dna"
    data = MarkovData(d, seq_len=8, train_tokens=512, valid_tokens=256, test_tokens=256, record_length=128)
    b = data.train_batch(0, 4)
    assert type(b).__name__ == "Batch" and b.x0.shape == (4, 8) and b.valid.all() and b.fixed is None
    assert all(type(e).__name__ == "Batch" for e in data.eval_batches("valid", 4))
    assert data.eval_units("valid") is None and data.sample_condition(2) is None and data.unit == "token"
