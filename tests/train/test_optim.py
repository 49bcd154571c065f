"""Optimiser groups (no weight decay on biases, norms, embeddings), AdamW, clipping."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from seqdiff.backbones import DiT
from seqdiff.train.optim import build_optimizer, clip_gradients, parameter_groups


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.table = nn.Embedding(5, 4)  # an embedding whose name does not say so
        self.t_embed = nn.Linear(1, 4)  # a time embedder: named as one, kept out of decay
        self.proj = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 3, bias=False)
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)


def names(model, group):
    ids = {id(p) for p in group["params"]}
    return [n for n, p in model.named_parameters() if id(p) in ids]


def test_groups_decay_only_weight_matrices():
    net = Net()
    decay, no_decay = parameter_groups(net, 0.1)
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (0.1, 0.0)
    assert names(net, decay) == ["proj.weight", "head.weight"]
    assert names(net, no_decay) == ["embed.weight", "table.weight", "t_embed.weight", "t_embed.bias", "proj.bias",
                                    "norm.weight", "norm.bias"]
    # every trainable parameter exactly once, in named_parameters order; frozen ones not at all
    trainable = [n for n, p in net.named_parameters() if p.requires_grad]
    assert sorted(names(net, decay) + names(net, no_decay)) == sorted(trainable)


def test_groups_of_a_real_backbone():
    """DiT: token embedding, time embedder, norms and biases undecayed; the attention and MLP
    matrices and the output projection decayed."""
    net = DiT(vocab_size=7, d_model=16, n_layers=1, n_heads=2)
    decay, no_decay = (names(net, g) for g in parameter_groups(net, 0.01))
    assert decay and no_decay
    params = dict(net.named_parameters())
    for n in no_decay:
        assert params[n].dim() < 2 or "embed" in n, n
    for n in decay:
        assert params[n].dim() >= 2 and "embed" not in n, n
    assert any(isinstance(m, nn.Embedding) for m in net.modules())
    emb = [n for n, m in net.named_modules() if isinstance(m, nn.Embedding)]
    assert all(f"{e}.weight" in no_decay for e in emb)


def test_decoupled_decay_reaches_only_the_decay_group():
    """With zero gradients Adam's step is 0 and only the decoupled decay moves weights:
    ``p <- p * (1 - lr * wd)`` for the decay group, unchanged for the other."""
    net = Net()
    lr, wd = 0.1, 0.5
    opt = build_optimizer(net, lr=lr, betas=(0.9, 0.99), eps=1e-8, weight_decay=wd, device=torch.device("cpu"))
    assert "fused" not in opt.defaults or not opt.defaults["fused"]
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    for p in net.parameters():
        if p.requires_grad:
            p.grad = torch.zeros_like(p)
    opt.step()
    decay = set(names(net, opt.param_groups[0]))
    for n, p in net.named_parameters():
        want = before[n] * (1 - lr * wd) if n in decay else before[n]
        torch.testing.assert_close(p.detach(), want, rtol=0, atol=1e-7)
    assert opt.param_groups[0]["betas"] == (0.9, 0.99) and opt.param_groups[0]["lr"] == lr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fused AdamW is used on CUDA only (no GPU here)")
def test_fused_adamw_on_cuda():
    net = Net().cuda()
    opt = build_optimizer(net, lr=1e-3, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.0, device=torch.device("cuda"))
    assert opt.defaults["fused"] is True


def with_grads(*grads):
    ps = []
    for g in grads:
        p = nn.Parameter(torch.zeros(len(g), dtype=torch.float64))
        p.grad = torch.tensor(g, dtype=torch.float64)
        ps.append(p)
    return ps


def test_clipping_returns_the_norm_before_and_scales_to_max_norm():
    ps = with_grads([3.0, 0.0], [0.0, 4.0])  # global norm 5
    assert clip_gradients(ps, 1.0) == pytest.approx(5.0, rel=1e-12)
    clipped = math.sqrt(sum(float((p.grad ** 2).sum()) for p in ps))
    assert clipped == pytest.approx(1.0, rel=1e-5)  # 1 / (5 + 1e-6) * 5: torch's epsilon
    ps = with_grads([0.3, 0.4])
    assert clip_gradients(ps, 1.0) == pytest.approx(0.5, rel=1e-12)
    assert ps[0].grad.tolist() == [0.3, 0.4]  # under the limit: untouched


@pytest.mark.parametrize("max_norm", [0.0, -1.0, None])
def test_no_clipping_only_measures(max_norm):
    ps = with_grads([3.0, 0.0], [0.0, 4.0])
    assert clip_gradients(ps, max_norm) == pytest.approx(5.0, rel=1e-12)
    assert ps[0].grad.tolist() == [3.0, 0.0] and ps[1].grad.tolist() == [0.0, 4.0]
    assert clip_gradients([nn.Parameter(torch.zeros(2))], max_norm) == 0.0  # no gradient at all
