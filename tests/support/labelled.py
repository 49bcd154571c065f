"""A tiny labelled run on the synthetic multi-species source (data=species), trained in-process."""

from __future__ import annotations

import tempfile

from seqdiff.run import Run, build_run
from seqdiff.train.trainer import Trainer, TrainerConfig
from support.runs import tiny_config


def labelled_config(*, steps: int = 40, dropout: float = 0.2, species=("alpha", "beta"), seq_len: int = 16,
                    backbone: dict | None = None, **trainer) -> dict:
    cfg = tiny_config(steps=steps, eval_every=0, ckpt_every=0, log_every=10, **trainer)
    cfg["data"] = {"_target_": "seqdiff_recipes.synthetic.SpeciesData", "species": list(species), "order": 2,
                   "seq_len": seq_len, "eval_sequences": 32, "seed": 0}
    cfg["label"] = {"dropout": dropout}
    cfg["backbone"] = backbone or {"_target_": "seqdiff.backbones.DiT", "d_model": 32, "n_layers": 1, "n_heads": 2}
    return cfg


def labelled_run(*, steps: int = 40, run_dir: str | None = None, **kw) -> Run:
    """Built with the data's labels resolved (``label.vocab``), trained ``steps`` steps."""
    cfg = labelled_config(steps=steps, **kw)
    run = build_run(cfg, resolve_labels=True)
    if steps:
        trainer = Trainer(run.model, run.process, run.data, TrainerConfig.from_dict(cfg["trainer"]),
                          run_dir=run_dir or tempfile.mkdtemp(prefix="labelled-"), vocab=run.vocab, run_config=cfg,
                          label_dropout=run.label_dropout, log=lambda *a: None)
        trainer.fit()
        run.model = trainer.final_model()
    run.model.eval()
    return run
