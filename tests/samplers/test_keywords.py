"""Keywords as hard constraints: 100% coverage with every sampler, placement that respects
fixed and padded positions, the model placement's exact choice, and clear errors."""

from __future__ import annotations

import math

import pytest
import torch

from support.dummies import DNA, Arbitrary
from seqdiff.samplers import (

    AncestralSampler, Condition, KeywordCondition, OrderedSampler, keyword_coverage, keyword_variants, place_keywords,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on a shared CPU

KW = [[0, 1, 2], [3, 3], [2]]  # ACG, TT, G


@pytest.mark.parametrize("sampler", [
    OrderedSampler(DNA, num_steps=4, order="entropy_high"),
    OrderedSampler(DNA, num_steps=2, order="confidence"),
    AncestralSampler(DNA, num_steps=8),
], ids=["eags", "confidence", "ancestral"])
@pytest.mark.parametrize("placement", ["model", "spread"])
def test_every_keyword_is_in_every_sample(sampler, placement):
    L, n = 16, 12
    den = Arbitrary(DNA, L, seed=5)
    given = Condition.from_segments(L, {0: [1, 1]})
    cond = place_keywords(KW, num_samples=n, given=given, placement=placement, denoiser=den, vocab=DNA,
                          generator=torch.Generator().manual_seed(0))
    out = sampler.sample(den, n, L, cond, generator=torch.Generator().manual_seed(1))
    assert keyword_coverage(out.tokens, KW).tolist() == [1.0] * n
    assert (out.tokens[:, :2] == 1).all()  # the given condition is kept
    # spans never overlap each other or the given condition
    for spans in cond.spans:
        cover = [i for s, e, _, _ in spans for i in range(s, e)]
        assert len(cover) == len(set(cover)) and min(cover) >= 2


def test_coverage_counts_contiguous_occurrences_of_any_variant():
    t = torch.tensor([[0, 1, 2, 3], [2, 1, 0, 3]])
    assert keyword_coverage(t, [[0, 1], [[9], [3]]]).tolist() == [1.0, 0.5]
    assert keyword_coverage(t, [[[2, 1]], [[1, 0, 3]]], per_row=True).tolist() == [0.0, 1.0]


def test_placement_respects_fixed_and_padded_positions_and_errors_when_a_keyword_cannot_fit():
    L = 10
    valid = torch.tensor([[True] * 10, [True] * 6 + [False] * 4])
    tokens = torch.zeros(2, L, dtype=torch.long)
    fixed = torch.zeros(2, L, dtype=torch.bool)
    fixed[:, 2] = True  # free runs: row 0 [0,1] [3..9]; row 1 [0,1] [3..5]
    given = Condition(tokens, fixed, valid)
    den = Arbitrary(DNA, L, seed=0)
    for placement in ("model", "spread"):
        c = place_keywords([[0, 1, 2]], num_samples=2, given=given, placement=placement, denoiser=den, vocab=DNA,
                           temperature=0.0)
        for b, lim in ((0, 10), (1, 6)):
            (s, e, _, _), = c.spans[b]
            assert s >= 3 and e <= lim, (placement, b, s, e)  # not across the fixed position nor into padding
        assert torch.equal(c.valid, valid) and c.fixed[:, 2].all()
    # exactly fills row 1's three free positions after the fixed one; a fourth token cannot fit
    with pytest.raises(ValueError, match="no room left"):
        place_keywords([[0, 1, 2, 3]], num_samples=2, given=given, denoiser=den, vocab=DNA)
    with pytest.raises(ValueError, match="do not fit"):
        place_keywords([[0, 1, 2, 3]], num_samples=2, given=given, placement="spread")
    with pytest.raises(ValueError, match="no variant fits at position 1"):
        place_keywords([[0, 1]], num_samples=2, given=given, positions=[1], placement="spread")
    with pytest.raises(ValueError, match="outside the vocabulary or never generated"):
        place_keywords([[4]], length=8, denoiser=den, vocab=DNA)  # N is never generated
    with pytest.raises(ValueError, match="needs the denoiser"):
        place_keywords([[0]], length=8)


def test_model_placement_takes_the_most_probable_span():
    """A denoiser that strongly prefers token v at position p: the keyword [v] goes to p,
    and a two-token keyword to the start with the highest summed log-probability."""
    L = 8
    want = torch.full((L, DNA.size), -5.0)
    want[:, 1] = 5.0  # C everywhere ...
    want[5, 1], want[5, 2] = -5.0, 5.0  # ... but G at 5
    want[1, 0], want[2, 3] = 4.0, 4.0  # A at 1, T at 2

    def den(x, rate, valid, positions):
        return torch.log_softmax(want.expand(x.shape[0], -1, -1)[positions], -1)

    c = place_keywords([[2], [0, 3]], length=L, num_samples=3, denoiser=den, vocab=DNA, temperature=0.0)
    for spans in c.spans:
        assert sorted((s, k) for s, _, k, _ in spans) == [(1, 1), (5, 0)]
    # with a positive temperature the span is drawn from the same scores: G lands on 5 w.p. ~0.9995
    c = place_keywords([[2]], length=L, num_samples=50, denoiser=den, vocab=DNA, temperature=1.0,
                       generator=torch.Generator().manual_seed(0))
    assert sum(s == 5 for (s, _, _, _), in c.spans) >= 45


def test_spread_places_evenly():
    c = place_keywords([[0], [1], [2]], length=11, placement="spread")
    assert [s for s, _, _, _ in c.spans[0]] == [2, 5, 8]


def test_unresolved_keyword_condition_is_refused_and_resolves_with_a_model():
    L = 12
    den = Arbitrary(DNA, L, seed=7)
    kc = KeywordCondition(torch.zeros(L, dtype=torch.long), torch.zeros(L, dtype=torch.bool), keywords=[[0, 1]])
    with pytest.raises(ValueError, match="not placed yet"):
        OrderedSampler(DNA).sample(den, 2, L, kc)
    cond = kc.resolve(den, 3, vocab=DNA, generator=torch.Generator().manual_seed(0))
    out = OrderedSampler(DNA).sample(den, 3, L, cond, generator=torch.Generator().manual_seed(0))
    assert keyword_coverage(out.tokens, [[0, 1]]).tolist() == [1.0] * 3


def test_keyword_variants_with_and_without_a_leading_space():
    class Chars:
        def encode(self, text, where=""):
            if any(c not in "abc " for c in text):
                raise ValueError(f"{where}: bad character")
            return [" abc".index(c) for c in text]

    assert keyword_variants(Chars(), "ab") == [[0, 1, 2], [1, 2]]
    with pytest.raises(ValueError, match="cannot be encoded"):
        keyword_variants(Chars(), "xyz")
    with pytest.raises(ValueError, match="empty keyword"):
        keyword_variants(Chars(), "  ")
    assert math.isfinite(len(keyword_variants(Chars(), "a")))


def test_per_row_given_condition_is_sliced_per_batch_and_keeps_its_padding():
    """Run.generate slices a per-row (2-D) KeywordCondition into batches before placing."""
    from seqdiff.run import _rows

    L = 9
    valid = torch.arange(L).unsqueeze(0) < torch.tensor([[9], [5], [7]])
    kc = KeywordCondition(torch.zeros(3, L, dtype=torch.long), torch.zeros(3, L, dtype=torch.bool), valid, keywords=[[0, 1]])
    part = _rows(kc, 1, 2)
    assert isinstance(part, KeywordCondition) and torch.equal(part.valid, valid[1:]) and part.keywords == [[[0, 1]]]
    cond = part.resolve(Arbitrary(DNA, L), 2, vocab=DNA)
    for b, n in enumerate((5, 7)):
        (s, e, _, _), = cond.spans[b]
        assert e <= n
