"""EMA: the update against a hand computation (with MDLM's decay warm-up), swapping the
averaged weights in and out exactly, the saved state, copy_to."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seqdiff.train.ema import EMA


def model() -> nn.Module:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2)).double()
    m[2].bias.requires_grad_(False)  # frozen: not averaged, never touched
    return m


def test_decay_warms_up_then_caps():
    ema = EMA(model(), decay=0.2)
    seen = []
    for _ in range(4):
        seen.append(ema.current_decay())
        ema.num_updates += 1
    # min(decay, (1 + n) / (10 + n)) for n = 0, 1, 2, 3
    assert seen == [1 / 10, 2 / 11, 0.2, 0.2]


def test_update_matches_a_hand_computation():
    m = model()
    ema = EMA(m, decay=0.9)
    s = {n: p.detach().clone() for n, p in m.named_parameters() if p.requires_grad}
    for k in range(3):
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.5 * (k + 1))  # new weights after an optimiser step
        d = min(0.9, (1 + k) / (10 + k))
        ema.update(m)
        for n, p in m.named_parameters():
            if p.requires_grad:
                s[n] = d * s[n] + (1 - d) * p.detach()
    assert ema.num_updates == 3
    assert set(ema.shadow) == set(s) and "2.bias" not in ema.shadow
    for n in s:
        torch.testing.assert_close(ema.shadow[n], s[n], rtol=0, atol=1e-14)


def test_swapped_in_uses_the_average_and_restores_the_weights_exactly():
    m = model()
    ema = EMA(m, decay=0.5)
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(3.0).add_(0.1)
    ema.update(m)
    with torch.no_grad():
        for p in m.parameters():
            p.sub_(0.7)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    assert any(not torch.equal(before[n], ema.shadow[n]) for n in ema.shadow)
    with ema.swapped_in(m):
        for n, p in m.named_parameters():
            assert torch.equal(p, ema.shadow[n] if n in ema.shadow else before[n])
    assert all(torch.equal(v, before[k]) for k, v in m.state_dict().items())
    with pytest.raises(RuntimeError, match="inside"):
        with ema.swapped_in(m):
            raise RuntimeError("inside")
    assert all(torch.equal(v, before[k]) for k, v in m.state_dict().items())  # restored on error too


def test_state_round_trip():
    m = model()
    ema = EMA(m, decay=0.95)
    for _ in range(5):
        with torch.no_grad():
            for p in m.parameters():
                p.add_(torch.randn_like(p))
        ema.update(m)
    other = EMA(model(), decay=0.95)
    other.load({k: v.clone() for k, v in ema.shadow.items()}, ema.state_dict())
    assert ema.state_dict() == {"decay": 0.95, "num_updates": 5} == other.state_dict()
    assert other.current_decay() == ema.current_decay()
    assert all(torch.equal(other.shadow[k], ema.shadow[k]) for k in ema.shadow)
    # the next update continues identically
    ema.update(m)
    other.update(m)
    assert all(torch.equal(other.shadow[k], ema.shadow[k]) for k in ema.shadow)
    with pytest.raises(KeyError, match="checkpoint lacks"):
        other.load({k: v for k, v in ema.shadow.items() if k != "0.weight"}, ema.state_dict())


def test_copy_to_writes_the_average_into_the_trainable_parameters_only():
    m = model()
    ema = EMA(m, decay=0.5)
    for n in ema.shadow:
        ema.shadow[n] = torch.full_like(ema.shadow[n], 7.0)
    frozen = m[2].bias.detach().clone()
    ema.copy_to(m)
    for n, p in m.named_parameters():
        if n in ema.shadow:
            assert torch.equal(p, ema.shadow[n])
    assert torch.equal(m[2].bias, frozen)
    m[0].weight.data.zero_()
    assert ema.shadow["0.weight"].eq(7.0).all()  # a copy, not an alias


@pytest.mark.parametrize("decay", [-0.1, 1.0])
def test_decay_out_of_range_is_refused(decay):
    with pytest.raises(ValueError, match=r"decay must be in \[0, 1\)"):
        EMA(model(), decay=decay)
