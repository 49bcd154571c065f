"""The Hugging Face masked-LM backbone: tiny random BERT / RoBERTa built offline, the
backbone contract, id agreement with the text domain, and its clear errors."""

from __future__ import annotations

import pytest
import torch

from seqdiff_recipes.text import TextDomain
from seqdiff.backbones.hf_mlm import HFMaskedLM
from seqdiff.errors import ConfigError
from seqdiff.run import build_run
from seqdiff.processes import MaskedDiffusion
from seqdiff.vocab import VocabSpec
from support.textfiles import make_text, write_tiny_roberta

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on a shared CPU

TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
        "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


def vocab(n: int = 40) -> VocabSpec:
    return VocabSpec(size=n, mask_id=n - 2, pad_id=n - 1)


@pytest.mark.parametrize("model_type", ["bert", "roberta"])
def test_contract_head_selection_and_sdpa_mask(model_type):
    v = vocab()
    m = HFMaskedLM(v.size, v, config={"model_type": model_type, "max_position_embeddings": 80, **TINY}).eval()
    assert m.model.config.pad_token_id == v.pad_id and m.model.config.vocab_size == v.size
    x = torch.randint(0, 30, (3, 12))
    full = m(x)
    ref = m.model(input_ids=x).logits
    assert full.shape == (3, 12, v.size) and torch.allclose(full, ref, atol=1e-5)
    sel = torch.rand(3, 12) < 0.3
    assert torch.allclose(m(x, None, None, sel), full[sel], atol=1e-5)  # head only on selected rows
    # padding is invisible: what the padded positions hold does not change the real ones
    valid = torch.ones(3, 12, dtype=torch.bool)
    valid[0, 8:] = False
    a = m(x.masked_fill(~valid, v.pad_id), None, valid)
    b = m(x, None, valid)
    assert torch.allclose(a[0, :8], b[0, :8], atol=1e-5)
    # bidirectional: the first position sees the last token
    y = x.clone()
    y[1, -1] = (y[1, -1] + 1) % 30
    assert not torch.allclose(m(y)[1, 0], full[1, 0])


def test_errors_are_clear():
    v = vocab()
    with pytest.raises(ConfigError, match="time conditioning is not supported"):
        HFMaskedLM(v.size, v, config=TINY, time_conditioning=True)
    with pytest.raises(ConfigError, match=r"backbone.config.vocab_size=99 but the run's vocabulary needs 40"):
        HFMaskedLM(v.size, v, config={**TINY, "vocab_size": 99})
    with pytest.raises(ConfigError, match=r"backbone.config.pad_token_id=0 but the run's vocabulary needs 39"):
        HFMaskedLM(v.size, v, config={**TINY, "pad_token_id": 0})
    with pytest.raises(ConfigError, match="give backbone.path"):
        HFMaskedLM(v.size, v)
    with pytest.raises(ConfigError, match="not a Hugging Face model directory"):
        HFMaskedLM(v.size, v, path="/nonexistent")
    with pytest.raises(ConfigError, match="cannot build a 'roberta' masked LM"):  # positions start after pad id 39
        HFMaskedLM(v.size, v, config={"model_type": "roberta", "max_position_embeddings": 20, **TINY})
    m = HFMaskedLM(v.size, v, config={"model_type": "roberta", "max_position_embeddings": 60, **TINY})
    with pytest.raises(ValueError, match=r"sequence length 24 exceeds the model's 20 positions"):
        m(torch.zeros(1, 24, dtype=torch.long))  # RoBERTa: 20 = 60 - (pad 39 + 1)


@pytest.fixture(scope="module")
def roberta_dir(tmp_path_factory):
    """A tiny random RoBERTa saved with its (tiny byte-level BPE) tokenizer, as from the Hub."""
    from transformers import RobertaConfig, RobertaForMaskedLM

    d = tmp_path_factory.mktemp("rob")
    out = write_tiny_roberta(d)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(out))
    cfg = RobertaConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id, bos_token_id=0, eos_token_id=2,
                        max_position_embeddings=64, **TINY)
    RobertaForMaskedLM(cfg).save_pretrained(str(out))
    return out


def run_config(domain: dict, backbone: dict, corpus: str) -> dict:
    return {
        "seed": 0,
        "domain": {"_target_": "seqdiff_recipes.text.TextDomain", **domain},
        "data": {"_target_": "seqdiff_recipes.text.TextData", "corpus": {"path": corpus}, "seq_len": 24,
                 "mode": "pad", "bos": True, "eos": True, "overflow": "split"},
        "backbone": {"_target_": "seqdiff.backbones.hf_mlm.HFMaskedLM", **backbone},
        "process": {"_target_": "seqdiff.processes.MaskedDiffusion"},
        "sampler": {"_target_": "seqdiff.samplers.AncestralSampler", "num_steps": 8},
    }


def test_pretrained_roberta_with_its_own_tokenizer_trains_and_samples(roberta_dir, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(make_text(80))
    cfg = run_config({"tokenizer": "hf", "path": str(roberta_dir)}, {"path": str(roberta_dir)}, str(corpus))
    cfg["data"]["corpus"]["document"] = "line"
    exp = build_run(cfg)
    v = exp.vocab
    assert (v.mask_id, v.pad_id, exp.domain.bos_id, exp.domain.eos_id) == (265, 1, 0, 2)  # RoBERTa's own ids
    assert v.size == exp.model.vocab_size
    x, valid, _ = exp.data.train_batch(0, 4)
    rows = exp.data.packed["train"]
    assert rows.ids[0, 0] == 0 and (rows.ids == 2).any() and (rows.ids[~rows.valid] == 1).all()  # <s> .. </s> <pad>..
    out = exp.process.loss(exp.model, x, valid, generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    assert torch.isfinite(out.loss) and exp.model.model.roberta.embeddings.word_embeddings.weight.grad is not None
    s = exp.generate(2, 24)
    assert not (s.tokens == v.mask_id).any()


def test_mismatched_domain_is_refused(roberta_dir, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(make_text(40))
    cfg = run_config({"tokenizer": "byte"}, {"path": str(roberta_dir)}, str(corpus))
    with pytest.raises(ConfigError, match=r"the model has 266 token embeddings but the run's vocabulary has 260"):
        build_run(cfg)
    # same size, different ids: a byte domain padded to RoBERTa's size would still disagree on pad/mask
    v = VocabSpec(size=266, mask_id=260, pad_id=261)
    with pytest.raises(ConfigError, match=r"pad_token_id is 1 but the run's pad id is 261"):
        HFMaskedLM(266, v, path=str(roberta_dir))
    v2 = VocabSpec(size=266, mask_id=260, pad_id=1)
    with pytest.raises(ConfigError, match=r"the model's mask token id is 265 but the run's is 260"):
        HFMaskedLM(266, v2, path=str(roberta_dir))
    toks = list(TextDomain("hf", path=str(roberta_dir)).vocab.tokens)
    toks[7], toks[8] = toks[8], toks[7]
    v3 = VocabSpec(size=266, mask_id=265, pad_id=1, tokens=tuple(toks))
    with pytest.raises(ConfigError, match=r"token 7 is .* in the run's vocabulary but"):
        HFMaskedLM(266, v3, path=str(roberta_dir))


def test_checkpoint_round_trip_with_tied_weights(tmp_path):
    import seqdiff
    from seqdiff.io.checkpoint import save_checkpoint

    corpus = tmp_path / "c.txt"
    corpus.write_text(make_text(40))
    cfg = run_config({"tokenizer": "char", "train_corpus": {"path": str(corpus)}},
                     {"config": {"model_type": "bert", **TINY}}, str(corpus))
    exp = build_run(cfg)
    ema = {n: p.detach() + 0.01 for n, p in exp.model.named_parameters()}
    path = save_checkpoint(tmp_path / "ck", 1, model=exp.model, config=cfg, vocab=exp.vocab, ema=ema, artifacts=exp.domain)
    for use_ema in (False, True):
        run = seqdiff.load(path, ema=use_ema)
        for n, p in run.model.named_parameters():
            want = ema[n] if use_ema else dict(exp.model.named_parameters())[n]
            assert torch.allclose(p, want), n
        # the output projection is still tied to the input embedding after loading
        m = run.model.model
        assert m.cls.predictions.decoder.weight.data_ptr() == m.bert.embeddings.word_embeddings.weight.data_ptr()


def test_masked_diffusion_loss_with_bert_backbone_decreases():
    v = vocab(20)
    torch.manual_seed(0)
    m = HFMaskedLM(v.size, v, config={"model_type": "bert", **TINY})
    proc = MaskedDiffusion(v)
    x = torch.arange(16).remainder(4).repeat(8, 1)  # a fully predictable pattern
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    first = None
    for step in range(20):
        out = proc.loss(m, x, generator=torch.Generator().manual_seed(step))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        first = first if first is not None else out.loss.item()
    assert out.loss.item() < 0.6 * first, (first, out.loss.item())
