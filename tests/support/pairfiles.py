"""Pair files for tests/configs/test_configs.py (data=text_pairs and the experiments using it)."""

from __future__ import annotations

import json
from pathlib import Path


def write_pairs(path: Path, n: int = 60) -> Path:
    from support.textfiles import make_text

    words = make_text(n).split()
    path.write_text("".join(json.dumps({"src": " ".join(words[i:i + 2]), "tgt": " ".join(words[i + 2:i + 3])}) + "\n"
                            for i in range(0, 3 * n, 3)))
    return path


def write_tiny_roberta_model(d: Path) -> Path:
    """A tiny random RoBERTa with its tokenizer (offline), as a pretrained directory."""
    from transformers import AutoTokenizer, RobertaConfig, RobertaForMaskedLM

    from support.textfiles import write_tiny_roberta

    out = write_tiny_roberta(d)
    tok = AutoTokenizer.from_pretrained(str(out))
    cfg = RobertaConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id, bos_token_id=0, eos_token_id=2,
                        max_position_embeddings=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32)
    RobertaForMaskedLM(cfg).save_pretrained(str(out))
    return out


def config_fixture(tmp_path: Path, config: dict) -> list[str]:
    """A pairs file; with a Hugging Face domain also a tiny RoBERTa for domain and backbone."""
    out = [f"data.path={write_pairs(tmp_path / 'pairs.jsonl')}"]
    if config["domain"].get("tokenizer") == "hf":
        d = write_tiny_roberta_model(tmp_path / "rob")
        out += [f"domain.path={d}", f"backbone.path={d}"]
    return out


config_fixture.wants_config = True
