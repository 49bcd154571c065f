"""Samplers: exact output distributions on a toy, caching equivalence, conditioning."""

from __future__ import annotations


import pytest
import torch

from seqdiff.processes import AutoregressiveProcess, MaskedDiffusion
from seqdiff.samplers import AncestralSampler, AutoregressiveSampler, Condition, sample_categorical
from seqdiff.schedules import CosineSchedule, LogLinearSchedule
from support.exact_laws import chi2_ok, empirical, exact_sampler_distribution
from support.toys import ExactDenoiser, Toy


@pytest.mark.parametrize("schedule", [LogLinearSchedule(eps=1e-3), CosineSchedule(eps=0.0)], ids=repr)
def test_cached_and_uncached_match_the_exact_sampler_distribution(schedule):
    toy = Toy(2, 3, seed=7, concentration=0.7)
    model = ExactDenoiser(toy)
    proc = MaskedDiffusion(toy.vocab, schedule)
    n = 6000
    for cache in (True, False):
        sampler = AncestralSampler(toy.vocab, schedule, num_steps=3, cache=cache)
        exact = exact_sampler_distribution(toy, model, sampler)
        assert float(exact.sum()) == pytest.approx(1.0)
        out = sampler.sample(proc.denoiser(model), n, toy.L, generator=torch.Generator().manual_seed(1))
        assert chi2_ok(empirical(out.tokens, toy.V), exact, n), cache


def test_many_steps_recover_the_data_distribution():
    """With the exact denoiser and T >> L, ancestral sampling is any-order exact sampling."""
    toy = Toy(3, 3, seed=8, concentration=0.5)
    model = ExactDenoiser(toy)
    proc = MaskedDiffusion(toy.vocab)
    sampler = AncestralSampler(toy.vocab, proc.schedule, num_steps=2000)
    n = 6000
    out = sampler.sample(proc.denoiser(model), n, toy.L, generator=torch.Generator().manual_seed(2))
    assert chi2_ok(empirical(out.tokens, toy.V), toy.p, n)


def test_cache_calls_the_backbone_once_per_distinct_reveal_step():
    toy = Toy(2, 3, seed=0)
    proc = MaskedDiffusion(toy.vocab)
    T, L = 1000, 256
    sampler = AncestralSampler(toy.vocab, proc.schedule, num_steps=T)
    calls = []

    def denoiser(x, rate, valid, positions):
        calls.append(int(positions.sum()))
        return torch.zeros(int(positions.sum()), toy.vocab.size).masked_fill(toy.vocab.forbidden_mask(), float("-inf"))

    out = sampler.sample(denoiser, 1, L, generator=torch.Generator().manual_seed(0))
    assert sum(calls) == L and min(calls) >= 1
    assert out.nfe.item() == len(calls) == out.calls
    expected = T * (1 - (1 - 1 / T) ** L)  # ~ 226 distinct steps for the log-linear schedule
    assert abs(len(calls) - expected) < 40
    unc = AncestralSampler(toy.vocab, proc.schedule, num_steps=50, cache=False)
    assert unc.sample(denoiser, 2, 8, generator=torch.Generator().manual_seed(0)).nfe.tolist() == [50, 50]


def test_fixed_tokens_are_never_changed_and_padding_stays_padding():
    toy = Toy(3, 3, seed=1)
    proc = MaskedDiffusion(toy.vocab)
    L = 12
    cond = Condition.from_segments(L, {0: [2, 2], -3: [1, 0, 1], 5: [0]})
    valid = torch.ones(L, dtype=torch.bool)
    valid[-1] = False
    cond.fixed[-1] = False
    cond = Condition(cond.tokens, cond.fixed, valid)

    def denoiser(x, rate, valid, positions):  # puts all mass on token 2
        out = torch.full((int(positions.sum()), toy.vocab.size), float("-inf"))
        out[:, 2] = 0.0
        return out

    for cache in (True, False):
        s = AncestralSampler(toy.vocab, proc.schedule, num_steps=20, cache=cache)
        out = s.sample(denoiser, 4, L, cond, generator=torch.Generator().manual_seed(0))
        x = out.tokens
        assert (x[:, cond.fixed] == cond.tokens[cond.fixed]).all()
        assert (x[:, -1] == toy.vocab.pad_id).all()
        free = ~cond.fixed & valid
        assert (x[:, free] == 2).all()


def test_greedy_final_step_takes_the_argmax():
    toy = Toy(3, 3, seed=1)
    proc = MaskedDiffusion(toy.vocab)
    probs = torch.tensor([0.2, 0.5, 0.3])

    def denoiser(x, rate, valid, positions):
        out = torch.full((int(positions.sum()), toy.vocab.size), float("-inf"))
        out[:, :3] = probs.log()
        return out

    s = AncestralSampler(toy.vocab, proc.schedule, num_steps=1, greedy_final=True)  # T=1: all at the last step
    assert (s.sample(denoiser, 16, 5, generator=torch.Generator().manual_seed(0)).tokens == 1).all()
    s = AncestralSampler(toy.vocab, proc.schedule, num_steps=1)
    assert len(s.sample(denoiser, 64, 5, generator=torch.Generator().manual_seed(0)).tokens.unique()) == 3


@pytest.mark.parametrize("cache", [True, False])
def test_greedy_final_argmaxes_the_tokens_of_the_last_step_only(cache):
    """The documented law: with T steps a token is revealed at the last step with probability
    1/T (log-linear schedule) and only those take the argmax, so P(argmax token) is
    1/T + (1 - 1/T) p_max, not 1 (every token) nor p_max (MDLM's noise removal: ~none)."""
    toy = Toy(3, 3, seed=1)
    proc = MaskedDiffusion(toy.vocab)
    probs = torch.tensor([0.2, 0.5, 0.3])

    def denoiser(x, rate, valid, positions):
        out = torch.full((int(positions.sum()), toy.vocab.size), float("-inf"))
        out[:, :3] = probs.log()
        return out

    T, n, L = 4, 200, 50
    s = AncestralSampler(toy.vocab, proc.schedule, num_steps=T, cache=cache, greedy_final=True)
    tokens = s.sample(denoiser, n, L, generator=torch.Generator().manual_seed(1)).tokens
    freq, p = float((tokens == 1).double().mean()), 1 / T + (1 - 1 / T) * 0.5
    assert abs(freq - p) < 5 * (p * (1 - p) / (n * L)) ** 0.5, (freq, p)


def test_sample_categorical_frequencies_temperature_and_nucleus():
    p = torch.tensor([0.5, 0.3, 0.15, 0.0499, 0.0001], dtype=torch.float64)
    n = 200_000
    draws = sample_categorical(p.log().expand(n, -1), generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=5).double() / n
    assert chi2_ok(freq, p, n)
    assert (sample_categorical(p.log().expand(10, -1), temperature=0.0) == 0).all()
    nuc = sample_categorical(p.log().expand(n, -1), top_p=0.8, generator=torch.Generator().manual_seed(1))
    assert set(nuc.unique().tolist()) == {0, 1}  # the smallest prefix with mass >= 0.8
    hot = sample_categorical(p.log().expand(n, -1), temperature=0.5, generator=torch.Generator().manual_seed(2))
    q = p**2 / (p**2).sum()
    assert chi2_ok(torch.bincount(hot, minlength=5).double() / n, q, n)


def test_autoregressive_sampler_is_exact_and_respects_a_prefix():
    toy = Toy(2, 3, seed=3, concentration=0.6)
    V = toy.V

    class ARExact(ExactDenoiser):
        """Causal exact model: logits at i = log p(x_i | x_<i) from the shifted input."""

        causal = True

        def forward(self, x_in, t=None, valid=None, output_mask=None):
            B, L = x_in.shape
            logits = torch.full((B, L, self.vocab_size), -30.0, dtype=torch.float64)
            for b in range(B):
                prefix = x_in[b, 1:]
                for i in range(L):
                    consistent = (toy.seqs[:, :i] == prefix[:i]).all(1)
                    w = toy.p * consistent
                    m = torch.zeros(V, dtype=torch.float64).index_add_(0, toy.seqs[:, i], w)
                    logits[b, i, :V] = (m / m.sum()).clamp_min(1e-300).log()
            return logits if output_mask is None else logits[output_mask]

    model = ARExact(toy)
    proc = AutoregressiveProcess(toy.vocab)
    s = AutoregressiveSampler(toy.vocab)
    n = 3000
    out = s.sample(proc.denoiser(model), n, toy.L, generator=torch.Generator().manual_seed(4))
    assert chi2_ok(empirical(out.tokens, V), toy.p, n)
    assert out.nfe.tolist() == [toy.L] * n
    # exact NLL through the same process the evaluator uses
    nll = proc.nelbo(model, toy.seqs).nelbo
    assert torch.allclose(nll, toy.neg_log_p(toy.seqs), atol=1e-5)
    cond = Condition.from_segments(toy.L, {0: [1]})
    out = s.sample(proc.denoiser(model), 50, toy.L, cond, generator=torch.Generator().manual_seed(5))
    assert (out.tokens[:, 0] == 1).all() and out.nfe.tolist() == [toy.L - 1] * 50


def test_condition_validation():
    with pytest.raises(ValueError, match="does not fit"):
        Condition.from_segments(5, {3: [1, 2, 3]})
    with pytest.raises(ValueError, match="overlaps"):
        Condition.from_segments(5, {0: [1, 2], 1: [3]})
    toy = Toy(2, 2)
    s = AncestralSampler(toy.vocab, num_steps=4)
    with pytest.raises(ValueError, match="never generate"):
        s.start(1, 3, Condition.from_segments(3, {0: [toy.vocab.mask_id]}))


def test_kv_cached_ar_sampling_equals_recomputation():
    """Same seed, same draws: the cached and recomputing AR samplers give identical samples."""
    from seqdiff.backbones import DiT

    vocab = Toy(3, 3).vocab
    m = DiT(vocab.size, d_model=32, n_layers=2, n_heads=4, causal=True).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    proc = AutoregressiveProcess(vocab)
    cond = Condition.from_segments(10, {0: [1, 2], 5: [0]})
    outs = []
    for use_cache in (True, False):
        s = AutoregressiveSampler(vocab, use_cache=use_cache)
        outs.append(s.sample(proc.denoiser(m), 6, 10, cond, generator=torch.Generator().manual_seed(3)))
    assert torch.equal(outs[0].tokens, outs[1].tokens)
    assert (outs[0].tokens[:, :2] == torch.tensor([1, 2])).all() and (outs[0].tokens[:, 5] == 0).all()
    assert outs[0].nfe.tolist() == [10] * 6 and outs[1].nfe.tolist() == [7] * 6


def test_build_sampler_checks_the_declared_process_kinds(tmp_path, monkeypatch):
    """A subclass of the AR sampler, and the AR sampler wrapped for RC symmetry (strand mode),
    sample an AR run: the check reads ``Sampler.process_kinds``, not a class name."""
    from seqdiff.errors import ConfigError
    from seqdiff.run import build_run
    from support.runs import tiny_config

    (tmp_path / "my_samplers.py").write_text(
        "from seqdiff.samplers import AutoregressiveSampler\n\n"
        "class LeftToRight(AutoregressiveSampler):\n    '''A user's AR sampler.'''\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = tiny_config()
    cfg["backbone"]["causal"] = True
    cfg["process"] = {"_target_": "seqdiff.processes.AutoregressiveProcess"}
    exp = build_run(cfg)
    sub = exp.build_sampler({"_target_": "my_samplers.LeftToRight"})
    assert type(sub).__name__ == "LeftToRight"
    out = exp.generate(3, 16, sampler=sub)
    assert out.tokens.shape == (3, 16) and out.nfe.tolist() == [16] * 3
    rc = exp.build_sampler({"_target_": "seqdiff.samplers.RCSymmetricSampler", "rc": "strand",
                            "inner": "seqdiff.samplers.AutoregressiveSampler"})
    assert exp.generate(3, 16, sampler=rc).tokens.shape == (3, 16)
    with pytest.raises(ConfigError, match=r"RCSymmetricSampler cannot sample an autoregressive process"):
        exp.build_sampler({"_target_": "seqdiff.samplers.RCSymmetricSampler", "rc": "both",
                           "inner": "seqdiff.samplers.AutoregressiveSampler"})
    with pytest.raises(ConfigError, match=r"AncestralSampler cannot sample an autoregressive process.*sampler=autoregressive"):
        exp.build_sampler({"_target_": "seqdiff.samplers.AncestralSampler", "num_steps": 4})
    masked = build_run(tiny_config())
    with pytest.raises(ConfigError, match=r"LeftToRight cannot sample a masked process.*sampler=ancestral"):
        masked.build_sampler({"_target_": "my_samplers.LeftToRight"})
    assert masked.build_sampler({"_target_": "seqdiff.samplers.RCSymmetricSampler", "inner": "seqdiff.samplers.AncestralSampler",
                                 "num_steps": 4}).process_kinds == ("masked", "sedd")
