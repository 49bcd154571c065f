"""The AR baseline across gaps: a target reads the valid tokens before it, never an invalid one.

An interior invalid run (N bases under ``ns: ignore``, soft-masked repeats under
``softmask: ignore``: the HG38 setup) or left padding must be invisible to every
prediction, exactly, with both causal backbones, in the loss, in ``log_probs`` and in
the sampler (cached or not).
"""

from __future__ import annotations

import itertools

import pytest
import torch

from seqdiff.backbones import ARMamba, DiT
from seqdiff.processes import AutoregressiveProcess
from seqdiff.samplers import AutoregressiveSampler, Condition
from seqdiff.vocab import VocabSpec

VOCAB = VocabSpec(size=7, mask_id=5, pad_id=6)  # ids 0..4 real (A C G T N), [MASK], [PAD]
L, A, B = 16, 5, 8  # the invalid run is positions A..B


def model(kind: str, vocab: VocabSpec = VOCAB):
    torch.manual_seed(0)
    m = DiT(vocab.size, d_model=32, n_layers=2, n_heads=4, causal=True) if kind == "dit" else ARMamba(
        vocab.size, d_model=32, n_layers=2)
    with torch.no_grad():  # DiT's head starts at zero: perturb so every input matters
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return m.eval()


def gapped(rows: int = 4, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 4, (rows, L), generator=g)
    x[:, A : B + 1] = 4  # N
    valid = torch.ones(rows, L, dtype=torch.bool)
    valid[:, A : B + 1] = False
    return x, valid


def target_logp(proc, m, x, valid) -> torch.Tensor:
    with torch.no_grad():
        return proc.log_probs(m, x, valid).gather(-1, x.unsqueeze(-1)).squeeze(-1)


@pytest.mark.parametrize("kind", ["dit", "ar_mamba"])
def test_tokens_inside_an_invalid_run_are_never_read(kind):
    m, proc = model(kind), AutoregressiveProcess(VOCAB)
    x, valid = gapped()
    with torch.no_grad():
        nll = proc.nelbo(m, x, valid).nelbo
    lp = target_logp(proc, m, x, valid)
    g = torch.Generator().manual_seed(2)
    for pos in range(A, B + 1):
        for new in (0, 3, VOCAB.pad_id, VOCAB.mask_id):
            y = x.clone()
            y[:, pos] = new
            with torch.no_grad():
                assert torch.equal(proc.nelbo(m, y, valid).nelbo, nll), (pos, new)
            assert torch.equal(target_logp(proc, m, y, valid)[valid], lp[valid]), (pos, new)
    y = x.clone()
    y[:, A : B + 1] = torch.randint(0, 7, (x.shape[0], B + 1 - A), generator=g)  # all of the run at once
    with torch.no_grad():
        assert torch.equal(proc.nelbo(m, y, valid).nelbo, nll)


@pytest.mark.parametrize("kind", ["dit", "ar_mamba"])
def test_the_real_token_before_the_run_is_read_after_it(kind):
    m, proc = model(kind), AutoregressiveProcess(VOCAB)
    x, valid = gapped()
    y = x.clone()
    y[:, A - 1] = (x[:, A - 1] + 1) % 4
    after = slice(B + 1, L)  # every target after the run still sees x_{A-1}
    d = (target_logp(proc, m, y, valid)[:, after].sum(1) - target_logp(proc, m, x, valid)[:, after].sum(1)).abs()
    assert (d > 1e-3).all(), d
    # the first target after the run in particular
    assert (target_logp(proc, m, y, valid)[:, B + 1] != target_logp(proc, m, x, valid)[:, B + 1]).all()


@pytest.mark.parametrize("kind", ["dit", "ar_mamba"])
def test_left_padding_is_never_read(kind):
    m, proc = model(kind), AutoregressiveProcess(VOCAB)
    x, _ = gapped()
    valid = torch.arange(L).unsqueeze(0).expand(x.shape[0], -1) >= 3
    with torch.no_grad():
        nll = proc.nelbo(m, x, valid).nelbo
        y = x.clone()
        y[:, :3] = VOCAB.pad_id
        assert torch.equal(proc.nelbo(m, y, valid).nelbo, nll)
        assert (proc.nelbo(m, x, valid).num_tokens == L - 3).all()


@pytest.mark.parametrize("kind", ["dit", "ar_mamba"])
def test_a_full_row_is_unchanged_by_the_gap_handling(kind):
    """Without invalid positions the input is [START, x_0 .. x_{L-2}] unmasked, as before."""
    m, proc = model(kind), AutoregressiveProcess(VOCAB)
    x, _ = gapped()
    x_in, visible = proc.inputs(x, None)
    assert visible.all() and torch.equal(x_in, proc.shift_right(x))
    with torch.no_grad():
        torch.testing.assert_close(proc.log_probs(m, x), torch.log_softmax(
            m(proc.shift_right(x)).float().masked_fill(VOCAB.forbidden_mask(), float("-inf")), -1))


# ------------------------------------------------------------------ the sampler
TOY = VocabSpec(size=4, mask_id=2, pad_id=3)  # two real tokens
TL, GAP = 7, (2, 3)  # free positions 0, 1, 4, 5, 6: 32 sequences


def toy_condition(rows: int) -> Condition:
    valid = torch.ones(TL, dtype=torch.bool)
    valid[list(GAP)] = False
    return Condition(torch.zeros(TL, dtype=torch.long), torch.zeros(TL, dtype=torch.bool), valid).expand(rows)


@pytest.mark.parametrize("kind", ["dit", "ar_mamba"])
def test_sampling_across_a_gap_draws_from_the_models_likelihood(kind):
    """Cached and recomputing samplers give the same draws, and their law is exp(-NLL)
    of the process (enumerated over all 32 assignments of the free positions)."""
    m, proc = model(kind, TOY), AutoregressiveProcess(TOY)
    cond = toy_condition(1)
    free = [i for i in range(TL) if i not in GAP]
    seqs = torch.full((2 ** len(free), TL), TOY.pad_id)
    seqs[:, free] = torch.tensor(list(itertools.product(range(2), repeat=len(free))))
    valid = cond.valid.expand(len(seqs), -1)
    with torch.no_grad():
        p = torch.exp(-proc.nelbo(m, seqs, valid).nelbo)
    assert abs(float(p.sum()) - 1.0) < 1e-5  # the factorisation over valid positions is normalised
    n = 4000
    outs = {}
    for use_cache in (True, False):
        s = AutoregressiveSampler(TOY, use_cache=use_cache)
        assert s.start(n, TL, toy_condition(n)).cache_exact is False
        outs[use_cache] = s.sample(proc.denoiser(m), n, TL, toy_condition(n), generator=torch.Generator().manual_seed(3))
    assert torch.equal(outs[True].tokens, outs[False].tokens)
    tok = outs[True].tokens
    assert (tok[:, list(GAP)] == TOY.pad_id).all()
    idx = torch.zeros(n, dtype=torch.long)
    for i in free:
        idx = idx * 2 + tok[:, i]
    freq = torch.bincount(idx, minlength=len(seqs)).double() / n
    stat = float((n * (freq - p) ** 2 / p).sum())
    dof = len(seqs) - 1
    assert stat < dof + 5 * (2 * dof) ** 0.5, stat


def test_the_cache_is_used_with_trailing_padding_only():
    m, proc = model("dit", TOY), AutoregressiveProcess(TOY)
    valid = torch.arange(TL) < 5
    cond = Condition(torch.zeros(TL, dtype=torch.long), torch.zeros(TL, dtype=torch.bool), valid)
    s = AutoregressiveSampler(TOY)
    assert s.start(3, TL, cond).cache_exact is True
    outs = [AutoregressiveSampler(TOY, use_cache=c).sample(proc.denoiser(m), 50, TL, cond,
                                                           generator=torch.Generator().manual_seed(4)) for c in (True, False)]
    assert torch.equal(outs[0].tokens, outs[1].tokens)
    assert outs[0].nfe.tolist() == [5] * 50  # one cached decode per generated position
    # left padding: the first generated position would read a padded token from the cache
    left = Condition(torch.zeros(TL, dtype=torch.long), torch.zeros(TL, dtype=torch.bool), torch.arange(TL) >= 2)
    assert s.start(3, TL, left).cache_exact is False
