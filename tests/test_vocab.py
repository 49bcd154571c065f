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
