"""Every option of every config group, and the companions an option needs to compose into a
run (the AR process with a causal backbone, a text domain with text data, ...)."""

from __future__ import annotations

from pathlib import Path

from seqdiff.cli.main import config_dir

CONFIGS = config_dir()
AR = ["process=ar", "backbone=ar_transformer", "sampler=autoregressive"]
# Options that only make sense with companions.
COMPANIONS = {
    ("process", "ar"): AR[1:],
    ("backbone", "ar_transformer"): ["process=ar", "sampler=autoregressive"],
    ("backbone", "ar_conv"): ["process=ar", "sampler=autoregressive"],
    ("backbone", "ar_mamba"): ["process=ar", "sampler=autoregressive"],
    ("backbone", "hyenadna"): ["process=ar", "sampler=autoregressive"],
    ("sampler", "autoregressive"): AR[:2],
    ("domain", "protein"): ["data.symbols=ACDEFGHIKLMNPQRSTVWY", "data.motifs=[]", "data.order=1"],
    ("domain", "rna"): ["data.symbols=ACGU", "data.motifs=[]"],
    **{("domain", t): ["data=text"] for t in ("text_char", "text_byte", "text_bpe", "text_gpt2", "text_bert", "text_hf")},
    **{("data", t): ["domain=text_char"] for t in ("text", "text_pydoc", "text_lm1b", "text_owt")},
    ("data", "text_pairs"): ["domain=text_byte"],
    ("sampler", "semi_ar"): ["sampler.block_length=8"],  # the model's length; 16-token samples slide a window
    ("backbone", "hf_mlm"): ["backbone.config.hidden_size=16", "backbone.config.num_hidden_layers=1",
                             "backbone.config.num_attention_heads=2", "backbone.config.intermediate_size=32"],
}
def options() -> list[tuple[str, str]]:
    out = []
    for path in sorted(CONFIGS.rglob("*.yaml")):
        rel = path.relative_to(CONFIGS)
        if rel.parent == Path("."):
            continue
        out.append((rel.parent.as_posix(), rel.stem))
    return out
