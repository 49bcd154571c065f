"""The label vocabulary and label dropout (seqdiff/labels.py)."""

from __future__ import annotations

import pytest
import torch

from seqdiff.labels import LabelSpec, drop_labels
from seqdiff.utils.seeding import generator

SPEC = LabelSpec.of({"species": ["human", "mouse", "fly"], "tissue": ["liver", "brain"]})


def test_encode_decode_and_the_no_label_ids():
    assert SPEC.sizes == (3, 2) and SPEC.null().tolist() == [3, 2]
    assert SPEC.encode({"species": "fly", "tissue": "brain"}).tolist() == [2, 1]
    assert SPEC.encode("species:mouse,tissue:liver").tolist() == [1, 0]
    assert SPEC.encode({"tissue": "liver"}).tolist() == [3, 0]  # a field left out: no label there
    assert SPEC.decode(torch.tensor([0, 2])) == {"species": "human", "tissue": None}
    assert LabelSpec.of(SPEC.to_dict()) == SPEC
    one = LabelSpec.of({"species": ["a", "b"]})
    assert one.encode("b").tolist() == [1] and one.check(torch.tensor([0, 2])).shape == (2, 1)


def test_unknown_labels_and_fields_are_one_line_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"^label: unknown species label 'cat' \(known: human, mouse, fly\)$"):
        SPEC.encode({"species": "cat"})
    with pytest.raises(ValueError, match=r"^label: unknown label field 'age' \(known: species, tissue\)$"):
        SPEC.encode({"age": "old"})
    with pytest.raises(ValueError, match="give field:name"):
        SPEC.encode("human")
    with pytest.raises(ValueError, match="out of range"):
        SPEC.check(torch.tensor([[4, 0]]))
    with pytest.raises(ValueError, match="names repeat"):
        LabelSpec.of({"species": ["a", "a"]})


def test_label_dropout_rate_and_rows_depend_only_on_their_global_index():
    label = torch.zeros(4000, 2, dtype=torch.long)
    out = drop_labels(label, SPEC.null(), 0.25, generator=generator(0, 1))
    dropped = (out == SPEC.null()).all(1)
    assert ((out == SPEC.null()).any(1) == dropped).all()  # all fields of a row together
    assert abs(float(dropped.double().mean()) - 0.25) < 0.03  # 4000 rows: 3.5 standard errors
    # two ranks (or accumulation steps) of 2000 rows drop exactly what one process of 4000 does
    halves = [drop_labels(label[:2000], SPEC.null(), 0.25, generator=generator(0, 1), offset=o, total=4000)
              for o in (0, 2000)]
    assert torch.equal(torch.cat(halves), out)
    assert drop_labels(label, SPEC.null(), 0.0, generator=None) is label
