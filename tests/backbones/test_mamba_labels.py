"""Labels in BiMamba and Caduceus (seqdiff/backbones/bimamba.py, caduceus.py): the label moves
the output, an unlabelled network is initialised as before, RC equivariance holds with a label."""

from __future__ import annotations

import pytest
import torch

from seqdiff.backbones import BiMamba, CaduceusPH, CaduceusPS
from seqdiff.run import build_run
from seqdiff.vocab import VocabSpec, reverse_complement
from support.labelled import labelled_config
from support.ssm import randomize

DNA = VocabSpec(size=7, mask_id=5, pad_id=6, complement=(3, 2, 1, 0, 4, 5, 6))  # A C G T N [MASK] [PAD]
COMP = torch.tensor(DNA.complement)
SMALL = dict(d_model=16, n_layers=2, d_state=4)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: tiny shapes, one intra-op thread


BUILD = {
    "bimamba": lambda **kw: BiMamba(DNA.size, **SMALL, **kw),
    "caduceus_ps": lambda **kw: CaduceusPS(DNA.size, vocab=DNA, **SMALL, **kw),
    "caduceus_ph": lambda **kw: CaduceusPH(DNA.size, vocab=DNA, **SMALL, **kw),
}


@pytest.mark.parametrize("name", sorted(BUILD))
def test_a_labelled_network_starts_as_the_unlabelled_one_and_the_label_moves_it(name):
    torch.manual_seed(0)
    plain = BUILD[name]()
    torch.manual_seed(0)
    labelled = BUILD[name](label_sizes=[3])
    shared = {k: v for k, v in labelled.state_dict().items() if not k.startswith("label_embedding")}
    assert shared.keys() == plain.state_dict().keys()
    assert all(torch.equal(v, plain.state_dict()[k]) for k, v in shared.items())  # same init, same RNG use
    assert labelled.label_sizes == (3,) and plain.label_sizes == ()
    randomize(labelled)
    x = torch.randint(0, 5, (2, 20))
    a, b = labelled(x, label=torch.tensor([[0], [0]])), labelled(x, label=torch.tensor([[2], [2]]))
    assert (a - b).abs().max() > 1e-3
    assert torch.equal(labelled(x), labelled(x, label=torch.tensor([[3], [3]])))  # None: no label
    with pytest.raises(ValueError, match="built without labels"):
        plain(x, label=torch.zeros(2, 1, dtype=torch.long))


@pytest.mark.parametrize("name", ["caduceus_ps", "caduceus_ph"])
def test_caduceus_stays_rc_equivariant_with_a_label(name):
    model = randomize(BUILD[name](label_sizes=[3, 2])).double()
    x = torch.randint(0, 6, (3, 40))
    label = torch.tensor([[0, 1], [2, 0], [3, 2]])
    a = model(reverse_complement(x, COMP), label=label)
    b = model(x, label=label).flip(1)[..., COMP]
    assert b.abs().max() > 1.0 and (a - b).abs().max() <= 1e-10
    other = model(x, label=torch.tensor([[1, 1], [0, 0], [1, 0]])).flip(1)[..., COMP]
    assert (other - b).abs().max() > 1e-3  # the label matters, so the check is not vacuous


def test_a_labelled_run_builds_on_caduceus():
    cfg = labelled_config(backbone={"_target_": "seqdiff.backbones.CaduceusPS", **SMALL})
    run = build_run(cfg, resolve_labels=True)
    assert run.model.label_sizes == (2,)
    out = run.generate(2, 16, label="beta", guidance=1.0, sampler=run.build_sampler(
        {"_target_": "seqdiff.samplers.AncestralSampler", "num_steps": 4}))
    assert out.tokens.shape == (2, 16)
