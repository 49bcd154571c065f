"""Generative perplexity under a judge whose answer is known exactly (a uniform model), with
and without retokenization, for a seqdiff AR run and for a Hugging Face causal LM."""

from __future__ import annotations

import math

import pytest
import torch

from seqdiff_recipes.text import TextDomain
from seqdiff.eval.judge import SeqdiffJudge, generative_perplexity, load_judge, retokenize
from seqdiff.run import build_run
from support.textfiles import make_text, write_tiny_gpt2

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on a shared CPU


def char_domain(text: str) -> TextDomain:
    return TextDomain("char", chars=text)


def ar_run(domain_cfg: dict, seq_len: int = 32):
    """A fresh causal DiT: its output head is zero-initialised, so every allowed token has
    probability 1/num_generatable; the exact gen-PPL of any text is that number."""
    cfg = {
        "seed": 0,
        "domain": {"_target_": "seqdiff_recipes.text.TextDomain", **domain_cfg},
        "data": {"seq_len": seq_len},
        "backbone": {"_target_": "seqdiff.backbones.DiT", "d_model": 16, "n_layers": 1, "n_heads": 2, "causal": True},
        "process": {"_target_": "seqdiff.processes.AutoregressiveProcess"},
    }
    return build_run(cfg)


def test_uniform_judge_same_vocabulary_is_exact():
    exp = ar_run({"tokenizer": "char", "chars": "abcdefgh \n"})
    judge = SeqdiffJudge(exp)
    samples = torch.tensor([exp.domain.encode("abc def\nghab" * 5), exp.domain.encode("hhhhhhhh" * 7 + "ab" * 2)])
    res, toks = generative_perplexity(judge, samples, exp.domain)
    assert not res.retokenized and res.unscorable == 0
    assert res.gen_ppl == pytest.approx(exp.vocab.num_generatable, rel=1e-5)  # 10 chars + [BOS] + [EOS]
    assert res.num_tokens == samples.numel()  # 60 tokens each: scored in chunks of 32
    # entropy is reported beside it, computed on the samples: the repetitive one is lower
    assert 0 < res.mean_sequence_entropy_bits < math.log2(10)


def test_retokenized_judge_scores_decoded_text():
    judge_exp = ar_run({"tokenizer": "char", "chars": "edcba "})  # another id order and size
    sample_dom = char_domain("abcdexyz ")
    text_ok, text_bad = "abc de", "abx de"
    samples = torch.tensor([sample_dom.encode(text_ok), sample_dom.encode(text_bad)])
    lists = retokenize(samples, sample_dom, judge_exp.domain)
    assert judge_exp.domain.decode(lists[0]) == text_ok and lists[1] is None  # 'x' is not in the judge's alphabet
    res, _ = generative_perplexity(SeqdiffJudge(judge_exp), samples, sample_dom)
    assert res.retokenized and res.unscorable == 1 and res.num_samples == 1
    assert res.gen_ppl == pytest.approx(judge_exp.vocab.num_generatable, rel=1e-5)


def test_retokenization_keeps_document_separators():
    dom = TextDomain("char", chars="ab ")
    judge_dom = TextDomain("char", chars=" ba")
    row = dom.encode("ab") + [dom.eos_id] + dom.encode("ba a")
    [ids] = retokenize(torch.tensor([row]), dom, judge_dom)
    assert ids == judge_dom.encode("ab") + [judge_dom.eos_id] + judge_dom.encode("ba a")


def test_features_and_loading_a_seqdiff_judge_from_a_checkpoint(tmp_path):
    from seqdiff.io.checkpoint import save_checkpoint

    exp = ar_run({"tokenizer": "char", "chars": "abc "})
    path = save_checkpoint(tmp_path / "ar", 1, model=exp.model, config=exp.config, vocab=exp.vocab, artifacts=exp.domain)
    judge = load_judge(str(tmp_path / "ar"))
    assert isinstance(judge, SeqdiffJudge) and str(path) in judge.name
    f = judge.features([[0, 1, 2], [2, 2, 1, 0, 3]])
    assert f.shape == (2, 16) and torch.isfinite(f).all()


@pytest.fixture
def hf_gpt2_dir(tmp_path):
    """A tiny random GPT-2 (tied embeddings set to zero: uniform next-token distribution)
    with its tokenizer, saved like any Hugging Face model directory."""
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

    src = write_tiny_gpt2(tmp_path / "tok")
    tok = GPT2Tokenizer(vocab=str(src / "vocab.json"), merges=str(src / "merges.txt"))
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=16, n_embd=16, n_layer=1, n_head=2))
    with torch.no_grad():
        model.transformer.wte.weight.zero_()
    out = tmp_path / "hf"
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out


def test_hf_causal_judge_retokenizes_and_scores_every_token(hf_gpt2_dir):
    judge = load_judge(str(hf_gpt2_dir))
    assert type(judge).__name__ == "HFCausalJudge"
    dom = char_domain(make_text(20))
    texts = ["The fox runs far away from home.", "A small bird sings its song in the early morning light!"]
    samples = torch.tensor([dom.encode(t[:30]) for t in texts])
    res, toks = generative_perplexity(judge, samples, dom)
    assert res.retokenized and res.unscorable == 0
    assert res.gen_ppl == pytest.approx(len(judge.tokenizer), rel=1e-4)  # uniform over the judge's vocabulary
    # every judge token is scored (a BOS is prepended), across chunks of 16 positions
    assert res.num_tokens == sum(len(t) for t in toks)
    assert judge.features([t for t in toks]).shape == (2, 16)
