import pytest
import torch

from seqdiff.vocab import VocabSpec, check_ids


def test_mask_and_pad_must_differ():
    with pytest.raises(ValueError, match="mask_id and pad_id must differ"):
        VocabSpec(size=10, mask_id=9, pad_id=9)


def test_forbidden_always_contains_mask_and_pad():
    v = VocabSpec(size=8, mask_id=6, pad_id=7, never_generate=(5,))
    assert v.never_generate == (5, 6, 7)
    assert v.forbidden_mask().tolist() == [False] * 5 + [True] * 3
    assert v.num_generatable == 5


def test_complement_must_be_an_involution_fixing_specials():
    VocabSpec(size=6, mask_id=4, pad_id=5, complement=(3, 2, 1, 0, 4, 5))
    with pytest.raises(ValueError, match="involution"):
        VocabSpec(size=6, mask_id=4, pad_id=5, complement=(1, 2, 0, 3, 4, 5))
    with pytest.raises(ValueError, match="fix special"):
        VocabSpec(size=6, mask_id=4, pad_id=5, complement=(0, 1, 2, 3, 5, 4))


def test_round_trip_and_difference():
    v = VocabSpec(size=5, mask_id=3, pad_id=4, tokens=("A", "B", "C", "[MASK]", "[PAD]"))
    assert VocabSpec.from_dict(v.to_dict()) == v
    w = VocabSpec(size=5, mask_id=3, pad_id=4, tokens=("A", "B", "D", "[MASK]", "[PAD]"))
    assert "token 2" in v.describe_difference(w)
    assert "size" in v.describe_difference(VocabSpec(size=6, mask_id=3, pad_id=4))
    assert v.describe_difference(v) is None


def test_check_ids():
    v = VocabSpec(size=5, mask_id=3, pad_id=4)
    check_ids(torch.tensor([0, 4]), v)
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        check_ids(torch.tensor([0, 5]), v)


# ------------------------------------------------------------------ one reverse complement
COMP = torch.tensor([3, 2, 1, 0, 4, 5])  # A C G T <-> T G C A; [MASK]=4, [PAD]=5 fixed
DNA6 = VocabSpec(size=6, mask_id=4, pad_id=5, complement=tuple(COMP.tolist()))


def test_reverse_complement_of_whole_rows_and_of_padded_rows():
    from seqdiff.vocab import mirror_index, reverse_complement

    x = torch.tensor([[0, 0, 1, 2], [3, 1, 5, 5]])
    assert reverse_complement(x, COMP).tolist() == [[1, 2, 3, 3], [5, 5, 2, 0]]  # rc over all of each row
    assert reverse_complement(x[0], COMP).tolist() == [1, 2, 3, 3]  # any leading shape without valid
    valid = torch.tensor([[True] * 4, [True, True, False, False]])
    # padded rows: the real positions are reversed among themselves, padding stays in place
    assert reverse_complement(x, COMP, valid).tolist() == [[1, 2, 3, 3], [2, 0, 5, 5]]
    left = torch.tensor([[False, True, True, True]])
    assert reverse_complement(torch.tensor([[5, 0, 1, 1]]), COMP, left).tolist() == [[5, 2, 2, 3]]
    idx = mirror_index(valid)
    assert torch.equal(idx.gather(1, idx), torch.arange(4).expand(2, 4))  # an involution
    assert torch.equal(reverse_complement(reverse_complement(x, COMP, valid), COMP, valid), x)


def test_every_reverse_complement_is_the_vocab_one():
    """Caduceus, the RC sampler wrapper and the DNA recipe's augmentation share one function
    (before: four implementations with three signatures)."""
    import numpy as np

    import seqdiff.backbones.caduceus as caduceus
    import seqdiff.samplers as samplers
    import seqdiff.samplers.rc as rc
    from seqdiff.vocab import mirror_index, reverse_complement
    from seqdiff_recipes.dna.augment import rc_augment, reverse_complement_ids

    assert caduceus.reverse_complement is rc.reverse_complement is samplers.reverse_complement is reverse_complement
    assert rc.mirror_index is mirror_index
    x = torch.randint(0, 4, (3, 7), generator=torch.Generator().manual_seed(0))
    assert torch.equal(reverse_complement_ids(x, COMP), reverse_complement(x, COMP))
    assert (reverse_complement_ids(x.numpy(), COMP.numpy()) == reverse_complement(x, COMP).numpy()).all()
    assert reverse_complement_ids(x.numpy().astype(np.int32), COMP.numpy()).dtype == COMP.numpy().dtype
    y, _ = rc_augment(x, torch.ones_like(x, dtype=torch.bool), torch.tensor([True, False, True]), COMP)
    assert torch.equal(y[0], reverse_complement(x[0], COMP)) and torch.equal(y[1], x[1])


# ------------------------------------------------------------------ one "forbid, then log-softmax"
def test_log_softmax_allowed_zeroes_forbidden_ids_in_the_dtype_asked_for():
    logits = torch.randn(3, 5, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    lp = DNA6.log_softmax_allowed(logits)
    assert lp.dtype == torch.float32
    assert torch.isneginf(lp[..., [4, 5]]).all() and torch.isfinite(lp[..., :4]).all()
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(3, 5), rtol=0, atol=1e-6)
    lp64 = DNA6.log_softmax_allowed(logits, dtype=torch.float64)
    torch.testing.assert_close(lp64[..., :4], torch.log_softmax(logits[..., :4], dim=-1), rtol=0, atol=1e-12)
    # the processes' cross-entropy through it is exactly F.cross_entropy of the masked logits
    flat, target = logits.reshape(-1, 6).float(), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2])
    masked = flat.masked_fill(DNA6.forbidden_mask(), float("-inf"))
    assert torch.equal(torch.nn.functional.nll_loss(DNA6.log_softmax_allowed(flat), target, reduction="none"),
                       torch.nn.functional.cross_entropy(masked, target, reduction="none"))
