"""Trainer: exact resume, non-finite losses, metrics; checkpoints: atomic, verified."""

from __future__ import annotations

import json

import pytest
import torch

from seqdiff.errors import CheckpointError, TrainingError
from seqdiff.run import build_run, load
from seqdiff.train import Trainer, TrainerConfig, load_checkpoint
from seqdiff.io.checkpoint import latest_valid_checkpoint, list_checkpoints, save_checkpoint
from support.runs import tiny_config


def make_trainer(cfg: dict, run_dir, log=lambda s: None) -> Trainer:
    exp = build_run(cfg)
    return Trainer(exp.model, exp.process, exp.data, TrainerConfig.from_dict(cfg["trainer"]),
                   run_dir=run_dir, vocab=exp.vocab, run_config=cfg, seed=cfg["seed"], log=log)


def params(t: Trainer) -> dict[str, torch.Tensor]:
    out = {f"model.{k}": v.clone() for k, v in t.model.state_dict().items()}
    out.update({f"ema.{k}": v.clone() for k, v in t.ema.shadow.items()})
    for name, p in t.model.named_parameters():
        for k, v in t.optimizer.state[p].items():
            out[f"opt.{name}.{k}"] = v.clone() if torch.is_tensor(v) else torch.tensor(v)
    return out


def test_resume_is_bitwise_identical_to_an_uninterrupted_run(tmp_path):
    cfg = tiny_config()
    straight = make_trainer(cfg, tmp_path / "a")
    straight.fit()
    ref = [json.loads(l) for l in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]

    # Run the same config, stop it after step 6, then throw away the step-6 checkpoint: as if
    # the process died after step 6 with step 4 the last checkpoint on disk.
    first = make_trainer(cfg, tmp_path / "b")
    inner = first._train_step

    def step_then_maybe_die():
        out = inner()
        if first.step == 5:  # this call completes step 6
            first._stop_signal = "SIGKILL"
        return out

    first._train_step = step_then_maybe_die
    assert first.fit().stopped_early == "SIGKILL"
    import shutil

    shutil.rmtree(tmp_path / "b" / "checkpoints" / "step-00000006")
    (tmp_path / "b" / "checkpoints" / "latest").write_text("step-00000004\n")
    second = make_trainer(cfg, tmp_path / "b")
    res = second.fit()
    assert res.resumed_from == 4
    a, b = params(straight), params(second)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    got = [json.loads(l) for l in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in got] == [r["step"] for r in ref]
    for r, g in zip(ref, got):
        assert r["loss"] == g["loss"] and r.get("valid_bits_per_token") == g.get("valid_bits_per_token")


def test_checkpoints_are_pruned_and_loadable(tmp_path):
    cfg = tiny_config()
    t = make_trainer(cfg, tmp_path)
    t.fit()
    names = [p.name for p in list_checkpoints(tmp_path / "checkpoints")]
    assert names == ["step-00000008", "step-00000012"]
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == "step-00000012"
    exp = load(tmp_path)
    assert exp.weights == "ema" and exp.checkpoint.step == 12
    for name, p in exp.model.named_parameters():
        assert torch.equal(p, t.ema.shadow[name])
    out = exp.generate(3, seed=1)
    assert out.tokens.shape == (3, 16)
    assert not (out.tokens == exp.vocab.mask_id).any()


def test_corrupted_checkpoint_is_reported_and_resume_falls_back(tmp_path):
    cfg = tiny_config()
    make_trainer(cfg, tmp_path).fit()
    latest = tmp_path / "checkpoints" / "step-00000012"
    weights = latest / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="model.safetensors: SHA-256"):
        load_checkpoint(latest)
    (latest / "ema.safetensors").write_bytes(b"truncated")
    with pytest.raises(CheckpointError, match=r"ema.safetensors: 9 bytes, manifest says"):
        load_checkpoint(latest)
    ckpt, problems = latest_valid_checkpoint(tmp_path / "checkpoints")
    assert ckpt.step == 8 and len(problems) == 1
    logs = []
    t = make_trainer(cfg, tmp_path, log=logs.append)
    assert t.maybe_resume() == 8
    assert any("skipping unusable checkpoint" in l for l in logs)


def test_a_killed_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    cfg = tiny_config(steps=4, ckpt_every=0)
    t = make_trainer(cfg, tmp_path)
    t.fit()
    import seqdiff.io.checkpoint as ck

    def boom(*a, **k):
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(ck, "save_file", boom)
    t.step = 6
    with pytest.raises(KeyboardInterrupt):
        t.save()
    root = tmp_path / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step-00000004"]
    assert load_checkpoint(tmp_path).step == 4


def test_resume_refuses_a_different_model(tmp_path):
    make_trainer(tiny_config(), tmp_path).fit()
    cfg = tiny_config()
    cfg["backbone"]["d_model"] = 32
    with pytest.raises(CheckpointError, match="'backbone' config differs"):
        make_trainer(cfg, tmp_path).maybe_resume()
    cfg = tiny_config()
    cfg["domain"]["alphabet"] = "ACGTU"
    cfg["domain"]["complement"] = None
    cfg["data"]["symbols"] = "ACGT"
    with pytest.raises(CheckpointError, match="vocabulary differs"):
        make_trainer(cfg, tmp_path).maybe_resume()


def test_non_finite_loss_stops_with_the_last_checkpoint_intact(tmp_path):
    cfg = tiny_config(steps=10, ckpt_every=4)
    t = make_trainer(cfg, tmp_path)
    real_loss = t.process.loss

    def loss(model, x0, valid=None, **kw):
        out = real_loss(model, x0, valid, **kw)
        if t.step == 6:
            out.loss = out.loss * float("nan")
        return out

    t.process.loss = loss
    with pytest.raises(TrainingError, match=r"non-finite loss at step 6.*step-00000004"):
        t.fit()
    assert load_checkpoint(tmp_path).step == 4

    cfg = tiny_config(steps=10, ckpt_every=4, on_nan="skip")
    t = make_trainer(cfg, tmp_path / "skip")
    real_loss2 = t.process.loss

    def loss2(model, x0, valid=None, **kw):
        out = real_loss2(model, x0, valid, **kw)
        if t.step in (3, 7):
            out.loss = out.loss * float("inf")
        return out

    t.process.loss = loss2
    res = t.fit()
    assert res.step == 10 and res.nan_skips == 2
    assert all(torch.isfinite(p).all() for p in t.model.parameters())


def test_a_skipped_step_keeps_its_metrics_line_and_checkpoint(tmp_path):
    """on_nan=skip: a skipped step that falls on a log / checkpoint step (here 4, 8 and the
    last, 10) still writes its metrics line, marked skipped, and its checkpoint."""
    cfg = tiny_config(steps=10, log_every=2, ckpt_every=4, eval_every=0, keep_last=10, on_nan="skip")
    t = make_trainer(cfg, tmp_path)
    real_loss = t.process.loss

    def loss(model, x0, valid=None, **kw):
        out = real_loss(model, x0, valid, **kw)
        if t.step in (3, 7, 9):  # the updates that would complete steps 4, 8 and 10
            out.loss = out.loss * float("nan")
        return out

    t.process.loss = loss
    res = t.fit()
    assert res.step == 10 and res.nan_skips == 3
    lines = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [2, 4, 6, 8, 10]
    for m in lines:
        if m["step"] in (4, 8, 10):
            assert m["skipped"] == "non-finite loss" and m["loss"] is None and m["lr"] > 0
        else:
            assert "skipped" not in m and m["loss"] > 0
    assert [c.name for c in list_checkpoints(tmp_path / "checkpoints")] == ["step-00000004", "step-00000008", "step-00000010"]
    assert load_checkpoint(tmp_path / "checkpoints" / "step-00000008").state("trainer_state")["nan_skips"] == 2


@pytest.mark.parametrize("grad_clip", [0.0, -1.0])
def test_no_clipping_with_no_gradient_at_all(tmp_path, grad_clip):
    """grad_clip <= 0 (no clipping) only logs the norm: 0 for a step in which the loss reaches
    no parameter (it crashed on the empty list of gradients)."""
    t = make_trainer(tiny_config(steps=2, grad_clip=grad_clip, ckpt_every=0, eval_every=0, log_every=1), tmp_path)
    real_loss = t.process.loss
    before = {k: v.clone() for k, v in t.model.state_dict().items()}

    def loss(model, x0, valid=None, **kw):
        out = real_loss(model, x0, valid, **kw)
        out.loss = out.loss.detach() + torch.zeros((), requires_grad=True)  # a leaf, not the model's
        return out

    t.process.loss = loss
    res = t.fit()
    assert [h["grad_norm"] for h in res.history] == [0.0, 0.0]
    assert all(torch.equal(before[k], v) for k, v in t.model.state_dict().items())  # nothing to update
    t2 = make_trainer(tiny_config(steps=2, grad_clip=grad_clip, ckpt_every=0, eval_every=0, log_every=1), tmp_path / "b")
    assert all(h["grad_norm"] > 0 for h in t2.fit().history)


def test_trainer_config_rejects_unknown_keys():
    from seqdiff.errors import ConfigError

    with pytest.raises(ConfigError, match=r"unknown keys \['stepz'\]"):
        TrainerConfig.from_dict({"stepz": 3})
    with pytest.raises(ConfigError, match="on_nan"):
        TrainerConfig(on_nan="ignore")


def test_save_checkpoint_never_pickles(tmp_path):
    cfg = tiny_config(steps=2)
    t = make_trainer(cfg, tmp_path)
    t.fit()
    files = {p.name for p in (tmp_path / "checkpoints" / "step-00000002").iterdir()}
    assert files == {"config.json", "manifest.json", "model.safetensors", "ema.safetensors", "optimizer.safetensors",
                     "optimizer.json", "trainer_state.json"}
    with pytest.raises(TypeError, match="cannot store"):
        save_checkpoint(tmp_path / "x", 1, model=t.model, config={}, vocab=t.vocab, states={"bad": {"f": object()}})


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # would create the marker file if unpickled


def test_a_malicious_pickle_is_never_executed(tmp_path):
    import pickle

    from seqdiff.utils.io import sha256_file

    make_trainer(tiny_config(steps=2), tmp_path).fit()
    ckpt = tmp_path / "checkpoints" / "step-00000002"
    marker = tmp_path / "pwned"
    for name in ("model.safetensors", "ema.safetensors"):
        (ckpt / name).write_bytes(pickle.dumps(_Evil(str(marker))))
    (ckpt / "model.pt").write_bytes(pickle.dumps(_Evil(str(marker))))
    # an attacker can rewrite the manifest too, so that it verifies
    manifest = json.loads((ckpt / "manifest.json").read_text())
    for name in manifest["files"]:
        manifest["files"][name] = {"size": (ckpt / name).stat().st_size, "sha256": sha256_file(ckpt / name)}
    (ckpt / "manifest.json").write_text(json.dumps(manifest))
    for ema in (True, False):
        with pytest.raises(CheckpointError, match="not a valid safetensors file"):
            load(ckpt, ema=ema)
    assert not marker.exists()
