"""Fine-tuning a pretrained masked LM (a tiny random RoBERTa written offline with its own
tokenizer) on source -> target pairs with ENS from the frozen pretrained model, then EAGS
sampling from a source with keywords: experiment=text_pairs_roberta end to end."""

from __future__ import annotations

import json

import pytest
import torch

import seqdiff
from seqdiff.cli.main import main
from support.textfiles import make_text, write_tiny_roberta

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on a shared CPU

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def roberta(tmp_path_factory):
    from transformers import AutoTokenizer, RobertaConfig, RobertaForMaskedLM

    out = write_tiny_roberta(tmp_path_factory.mktemp("rob"))
    tok = AutoTokenizer.from_pretrained(str(out))
    cfg = RobertaConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id, bos_token_id=0, eos_token_id=2,
                        max_position_embeddings=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    RobertaForMaskedLM(cfg).save_pretrained(str(out))
    return out


def test_finetune_roberta_on_pairs_with_ens_then_sample_with_eags(roberta, tmp_path, capsys):
    words = make_text(80).split()
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"src": " ".join(words[i:i + 3]), "tgt": " ".join(words[i + 3:i + 5])}) + "\n"
                             for i in range(0, 300, 5)))
    run = tmp_path / "run"
    before = {n: p.clone() for n, p in __import__("transformers").RobertaForMaskedLM.from_pretrained(str(roberta)).named_parameters()}
    assert main(["train", "experiment=text_pairs_roberta", f"domain.path={roberta}", f"backbone.path={roberta}",
                 f"data.path={pairs}", f"run_dir={run}", "data.seq_len=32", "trainer.steps=4", "trainer.batch_size=4",
                 "trainer.lr=1e-3", "trainer.warmup=1", "trainer.progress=false", "trainer.tensorboard=false",
                 "trainer.eval_every=2", "trainer.log_every=2", "trainer.eval_sequences=4", "eval.max_sequences=4",
                 "eval.num_samples=2", "eval.draws=1", "process.ens_groups=2", "sampler.num_steps=4"]) == 0
    cfg = json.loads((run / "checkpoints" / "step-00000004" / "config.json").read_text())["config"]
    assert cfg["process"]["ens_entropy"] == str(roberta) and cfg["data"]["separators"] == 2
    exp = seqdiff.load(run)
    assert (exp.vocab.mask_id, exp.vocab.pad_id, exp.domain.bos_id, exp.domain.eos_id) == (265, 1, 0, 2)
    changed = [n for n, p in exp.model.model.named_parameters() if n in before and not torch.equal(p, before[n])]
    assert changed  # the pretrained weights were fine-tuned
    # RoBERTa's pair format: <s> source </s></s> target </s>, the source fixed
    x, valid, fixed = exp.data.train_batch(0, 2)
    m = int(fixed[0].sum())
    assert x[0, 0] == 0 and x[0, m - 2 : m].tolist() == [2, 2] and x[0, valid[0]][-1] == 2
    capsys.readouterr()
    assert main(["sample", f"checkpoint={run}", "condition.source=the quick brown", "condition.keywords=[fox]",
                 "condition.target_length=8", "num_samples=3", "sampler.num_steps=4"]) == 0
    got = [s.split("\n", 1)[1].rstrip("\n") for s in capsys.readouterr().out.split(">sample_")[1:]]
    assert len(got) == 3 and all("fox" in s for s in got), got
