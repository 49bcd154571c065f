"""Tiny run configurations as plain dicts (no Hydra), for trainer and checkpoint tests."""

from __future__ import annotations

import copy


def tiny_config(**trainer) -> dict:
    cfg = {
        "seed": 0,
        "domain": {
            "_target_": "seqdiff_recipes.alphabet.AlphabetDomain",
            "name": "dna",
            "alphabet": "ACGTN",
            "uppercase": True,
            "complement": {"A": "T", "C": "G", "G": "C", "T": "A", "N": "N"},
        },
        "data": {
            "_target_": "seqdiff_recipes.synthetic.MarkovData",
            "symbols": "ACGT",
            "order": 2,
            "seq_len": 16,
            "train_tokens": 8192,
            "valid_tokens": 1024,
            "test_tokens": 1024,
            "record_length": 512,
            "seed": 0,
        },
        "backbone": {"_target_": "seqdiff.backbones.DiT", "d_model": 16, "n_layers": 1, "n_heads": 2, "dropout": 0.1},
        "process": {"_target_": "seqdiff.processes.MaskedDiffusion", "estimator": "time"},
        "sampler": {"_target_": "seqdiff.samplers.AncestralSampler", "num_steps": 16},
        "trainer": {
            "steps": 12,
            "batch_size": 8,
            "lr": 1e-2,
            "warmup": 2,
            "log_every": 2,
            "eval_every": 6,
            "eval_sequences": 8,
            "ckpt_every": 4,
            "progress": False,
            "tensorboard": False,
            "ema": 0.9,
        },
    }
    cfg["trainer"].update(trainer)
    return copy.deepcopy(cfg)


#: Overrides of a seconds-long CLI run of the quickstart (train, eval, samples).
CLI_TINY = [
    "trainer.steps=6",
    "trainer.batch_size=8",
    "trainer.progress=false",
    "trainer.eval_every=3",
    "trainer.log_every=3",
    "trainer.tensorboard=false",
    "backbone.d_model=16",
    "backbone.n_layers=1",
    "backbone.n_heads=2",
    "data.seq_len=32",
    "data.train_tokens=8192",
    "data.valid_tokens=1024",
    "data.test_tokens=1024",
    "data.record_length=512",
    "eval.max_sequences=8",
    "eval.num_samples=4",
    "sampler.num_steps=16",
]
