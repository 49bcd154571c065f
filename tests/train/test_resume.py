"""The resume policy, piece by piece, on real checkpoints of a small model (no trainer)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from seqdiff.errors import CheckpointError
from seqdiff.io.checkpoint import list_checkpoints, save_checkpoint
from seqdiff.train.config import TrainerConfig
from seqdiff.train.ema import EMA
from seqdiff.train.optim import build_optimizer
from seqdiff.train.parallel import Placement
from seqdiff.train.resume import (check_compatible, checkpoint_states, latest_checkpoint, remove_killed_saves, restore,
                                  truncate_metrics)
from seqdiff.vocab import VocabSpec

VOCAB = VocabSpec(size=6, mask_id=5, pad_id=4)
RUN = {"domain": {"name": "dna"}, "backbone": {"d_model": 8}, "process": {"estimator": "time"}, "trainer": {"steps": 4}}


def state(seed: int):
    """A model, its EMA and an optimizer that has taken one step (so it has moments)."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 6))
    ema = EMA(model, 0.9)
    opt = build_optimizer(model, lr=1e-2, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.1, device=torch.device("cpu"))
    model(torch.randn(2, 3)).square().sum().backward()
    opt.step()
    ema.update(model)
    return model, ema, opt


def save(root, step, model, ema, opt, config=RUN, nan_skips=0):
    states = checkpoint_states(opt.state_dict(), step=step, nan_skips=nan_skips, ema=ema, config=TrainerConfig(steps=9))
    return save_checkpoint(root, step, model=model, config=config, vocab=VOCAB, ema=ema.shadow, states=states, keep_last=0)


def test_leftovers_of_killed_saves_are_removed_and_checkpoints_kept(tmp_path):
    model, ema, opt = state(0)
    root = tmp_path / "checkpoints"
    save(root, 2, model, ema, opt)
    save(root, 4, model, ema, opt)
    tmp = root / ".tmp-step-00000006-k1ll3d"  # a save killed while writing step 6
    tmp.mkdir()
    (tmp / "model.safetensors").write_bytes(b"half")
    old = root / ".old-step-00000004-4242"  # step 4 re-saved, killed before the old copy went
    old.mkdir()
    (old / "manifest.json").write_text("{}")
    stranded = root / ".old-step-00000008-4242"  # killed mid-swap: the only copy of step 8, kept
    stranded.mkdir()
    gone = remove_killed_saves(root)
    assert sorted(p.name for p in gone) == [old.name, tmp.name]
    assert sorted(p.name for p in root.iterdir()) == [stranded.name, "latest", "step-00000002", "step-00000004"]
    assert remove_killed_saves(root) == [] and remove_killed_saves(tmp_path / "none") == []


def test_a_corrupt_latest_is_skipped_with_a_warning(tmp_path):
    model, ema, opt = state(0)
    root = tmp_path / "checkpoints"
    save(root, 2, model, ema, opt)
    newest = save(root, 4, model, ema, opt)
    data = bytearray((newest / "model.safetensors").read_bytes())
    data[-3] ^= 0xFF
    (newest / "model.safetensors").write_bytes(bytes(data))
    logs = []
    ckpt = latest_checkpoint(root, required=True, log=logs.append)
    assert ckpt.step == 2
    assert len(logs) == 1 and logs[0].startswith("warning: skipping unusable checkpoint: ")
    assert "step-00000004/model.safetensors: SHA-256" in logs[0]


def test_no_checkpoint_is_a_fresh_start_unless_required(tmp_path):
    logs = []
    assert latest_checkpoint(tmp_path / "checkpoints", required=False, log=logs.append) is None
    with pytest.raises(CheckpointError, match="resume=required but no valid checkpoint found"):
        latest_checkpoint(tmp_path / "checkpoints", required=True, log=logs.append)
    assert logs == []


@pytest.mark.parametrize("section", ["domain", "backbone", "process"])
def test_a_config_mismatch_is_refused_naming_the_section(tmp_path, section):
    model, ema, opt = state(0)
    save(tmp_path, 2, model, ema, opt)
    ckpt = latest_checkpoint(tmp_path, required=True, log=print)
    check_compatible(ckpt, VOCAB, RUN)
    other = json.loads(json.dumps(RUN))
    other[section]["extra"] = 1
    with pytest.raises(CheckpointError, match=rf"config.json: cannot resume, '{section}' config differs from this run's \(saved "):
        check_compatible(ckpt, VOCAB, other)
    # the rest of a run may change on resume (more steps, another learning rate, ...)
    check_compatible(ckpt, VOCAB, {**RUN, "trainer": {"steps": 100}, "sampler": {"num_steps": 8}})
    check_compatible(ckpt, VOCAB, {k: v for k, v in RUN.items() if k != section})  # absent: nothing to compare


def test_a_vocabulary_mismatch_is_refused(tmp_path):
    model, ema, opt = state(0)
    save(tmp_path, 2, model, ema, opt)
    ckpt = latest_checkpoint(tmp_path, required=True, log=print)
    with pytest.raises(CheckpointError, match=r"vocabulary differs from the config \(size"):
        check_compatible(ckpt, VocabSpec(size=7, mask_id=6, pad_id=5), RUN)


def test_metrics_are_truncated_to_the_resumed_step(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [json.dumps({"step": s, "loss": 1.0 / s}) for s in (2, 4, 6, 8)]
    path.write_text("\n".join(lines) + '\n{"step": 10, "lo')  # the last line cut short by a kill
    assert truncate_metrics(path, 4) == 2
    assert path.read_text() == lines[0] + "\n" + lines[1] + "\n"
    assert truncate_metrics(path, 4) == 2 and truncate_metrics(path, 0) == 0 and path.read_text() == ""
    assert truncate_metrics(tmp_path / "absent.jsonl", 4) == 0 and not (tmp_path / "absent.jsonl").exists()


def test_restore_brings_back_weights_ema_moments_and_counters(tmp_path):
    model, ema, opt = state(0)
    ema.update(model)  # 2 updates here, 1 in the state restored into
    save(tmp_path, 6, model, ema, opt, nan_skips=3)
    ckpt = latest_checkpoint(tmp_path, required=True, log=print)
    m2, e2, o2 = state(1)  # other weights, other moments
    placement = Placement(m2, device="cpu")
    assert restore(ckpt, placement, e2, o2) == (6, 3)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), m2.state_dict().values()))
    assert all(torch.equal(ema.shadow[k], e2.shadow[k]) for k in ema.shadow) and e2.num_updates == ema.num_updates == 2
    for p, q in zip(model.parameters(), m2.parameters()):
        for k, v in opt.state[p].items():
            assert torch.equal(v, o2.state[q][k]), k
    assert [g["weight_decay"] for g in o2.param_groups] == [0.1, 0.0]


def test_restore_refuses_a_checkpoint_without_the_ema_a_run_uses(tmp_path):
    model, ema, opt = state(0)
    states = checkpoint_states(opt.state_dict(), step=2, nan_skips=0, ema=None, config=TrainerConfig())
    path = save_checkpoint(tmp_path, 2, model=model, config=RUN, vocab=VOCAB, states=states)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000002"]
    ckpt = latest_checkpoint(tmp_path, required=True, log=print)
    m2, e2, o2 = state(1)
    with pytest.raises(CheckpointError, match="no ema.safetensors but this run uses EMA"):
        restore(ckpt, Placement(m2, device="cpu"), e2, o2)
    assert restore(ckpt, Placement(m2, device="cpu"), None, o2) == (2, 0)  # a run without EMA resumes
    assert path.name == "step-00000002"


def test_checkpoint_states_record_the_trainer_settings():
    model, ema, opt = state(0)
    cfg = TrainerConfig(steps=9, lr=0.5)
    st = checkpoint_states(opt.state_dict(), step=3, nan_skips=1, ema=ema, config=cfg)
    assert st["trainer_state"]["step"] == 3 and st["trainer_state"]["nan_skips"] == 1
    assert st["trainer_state"]["ema"] == {"decay": 0.9, "num_updates": 1}
    assert st["trainer_state"]["trainer"]["lr"] == 0.5 and st["trainer_state"]["trainer"]["steps"] == 9
    assert st["optimizer"]["param_groups"][0]["weight_decay"] == 0.1
