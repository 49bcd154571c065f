"""End-to-end CLI: train -> sample -> eval on tiny settings, help, and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from support.runs import CLI_TINY

from seqdiff.cli.main import main

TINY = CLI_TINY


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    assert main(["train", f"run_dir={d}", *TINY]) == 0
    return d


def test_train_writes_a_complete_run(run_dir, capsys):
    assert (run_dir / "checkpoints" / "latest").read_text().strip() == "step-00000006"
    assert (run_dir / ".hydra" / "config.yaml").exists()
    metrics = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [3, 6] and "valid_bits_per_token" in metrics[-1]
    report = json.loads((run_dir / "eval.json").read_text())
    assert report["split"] == "test" and report["reference"]["entropy_rate_bits"] > 0
    assert report["likelihood"]["num_sequences"] == 8 and report["samples"]["num_samples"] == 4
    cfg = json.loads((run_dir / "checkpoints" / "step-00000006" / "config.json").read_text())
    assert "trainer.steps=6" in cfg["config"]["overrides"]


def test_sample_with_flanks_and_output_file(run_dir, capsys, tmp_path):
    out = tmp_path / "s.fa"
    assert main(["sample", f"checkpoint={run_dir}", "num_samples=3", "condition.left=ACGTACGT", "condition.right=GGGG", f"out={out}"]) == 0
    text = capsys.readouterr().out
    seqs = [l for l in text.splitlines() if l and not l.startswith(">")]
    assert len(seqs) == 3
    assert all(s.startswith("ACGTACGT") and s.endswith("GGGG") and len(s) == 32 and "_" not in s for s in seqs)
    assert out.read_text().count(">sample_") == 3


def test_sample_length_and_motif(run_dir, capsys):
    assert main(["sample", f"checkpoint={run_dir}/checkpoints/step-00000006", "num_samples=2", "length=20",
                 "condition.motif=TATAAT", "condition.motif_at=7", "sampler=ancestral_uncached", "sampler.num_steps=8"]) == 0
    seqs = [l for l in capsys.readouterr().out.splitlines() if l and not l.startswith(">")]
    assert all(len(s) == 20 and s[7:13] == "TATAAT" for s in seqs)


def test_eval_with_a_different_estimator(run_dir, capsys):
    assert main(["eval", f"checkpoint={run_dir}", "process.estimator=count", "eval.draws=2", "eval.num_samples=0"]) == 0
    out = capsys.readouterr().out
    assert "count" in out and "true entropy rate" in out
    report = json.loads((run_dir / "eval.json").read_text())
    assert report["likelihood"]["estimator"] == "count" and report["likelihood"]["draws"] == 2


def test_discrete_time_eval_of_a_continuous_model(run_dir, capsys):
    assert main(["eval", f"checkpoint={run_dir}", "process.num_steps=100", "eval.num_samples=0"]) == 0
    assert "NELBO" in capsys.readouterr().out


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seqdiff", *args], capture_output=True, text=True, timeout=120)


def test_errors_are_one_line_with_nonzero_exit(run_dir, tmp_path):
    r = run_cli("sample", f"checkpoint={tmp_path / 'nope'}")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == f"error: {tmp_path / 'nope'}: no such checkpoint or run directory"
    r = run_cli("sample", f"checkpoint={run_dir}", "condition.left=ACGTXA")
    assert r.returncode == 2 and "character 'X' at position 4" in r.stderr
    r = run_cli("sample", f"checkpoint={run_dir}", "domain=protein")
    assert r.returncode == 2 and "checkpoint fixes the domain" in r.stderr
    r = run_cli("eval")
    assert r.returncode == 2 and "give checkpoint=RUN_DIR" in r.stderr
    r = run_cli("train", f"run_dir={tmp_path / 'r'}", "trainer.stepz=1")
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert r.stderr.startswith("error: trainer.stepz: no such key (did you mean trainer.steps?)")
    assert not (tmp_path / "r").exists()
    r = run_cli("frobnicate")
    assert r.returncode == 2 and "unknown command" in r.stderr


def test_corrupt_checkpoint_is_named(run_dir, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(run_dir / "checkpoints" / "step-00000006", bad)
    (bad / "model.safetensors").write_bytes(b"\0" * 10)
    r = run_cli("sample", f"checkpoint={bad}")
    assert r.returncode == 2
    assert f"{bad / 'model.safetensors'}: 10 bytes, manifest says" in r.stderr


def test_help_lists_groups_and_module_entry_point():
    r = run_cli("--help")
    assert r.returncode == 0 and "backbone" in r.stdout and "experiment" in r.stdout and "quickstart" in r.stdout
    r = run_cli("train", "--help")
    assert r.returncode == 0 and "Config groups" in r.stdout and "process/schedule" in r.stdout
    from pathlib import Path

    exe = subprocess.run([str(Path(sys.executable).parent / "seqdiff"), "--help"], capture_output=True, text=True)
    assert exe.returncode == 0 and exe.stdout == run_cli("--help").stdout


def test_multirun_gives_every_job_its_own_run_directory(tmp_path, capsys):
    """``-m seed=0,1``: job k trains in run_dir/k with its own checkpoint and eval.json
    (before, both jobs shared run_dir and the second resumed from the first)."""
    sweep = tmp_path / "sweep"
    tiny = [a for a in TINY if not a.startswith(("trainer.steps", "eval.num_samples"))]
    assert main(["train", "-m", "seed=0,1", f"run_dir={sweep}", "trainer.steps=2", "eval.num_samples=0", *tiny]) == 0
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    weights = []
    for k in (0, 1):
        job = sweep / str(k)
        ck = job / "checkpoints" / "step-00000002"
        cfg = json.loads((ck / "config.json").read_text())
        assert cfg["config"]["seed"] == k and cfg["step"] == 2
        assert json.loads((job / "eval.json").read_text())["train"]["steps"] == 2
        assert [json.loads(l)["step"] for l in (job / "metrics.jsonl").read_text().splitlines()] == [2]
        assert (job / ".hydra" / "overrides.yaml").read_text().count(f"seed={k}") == 1
        weights.append((ck / "model.safetensors").read_bytes())
    assert weights[0] != weights[1]  # two seeds, two trainings: not one run resumed twice
    assert "resumed" not in capsys.readouterr().out


def test_tensorboard_event_files_hold_the_logged_metrics(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install 'seqdiff[test]')")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "tb"
    tiny = [a for a in TINY if a != "trainer.tensorboard=false"]
    assert main(["train", f"run_dir={run}", "trainer.tensorboard=true", "eval.num_samples=0", *tiny]) == 0
    events = list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1
    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    # the default process trains on MDLM's eps-truncated time estimator: named so, not "NELBO"
    assert {"loss", "train_truncated_nelbo_bits_per_token", "lr", "grad_norm", "tokens_per_s", "valid_bits_per_token"} <= tags
    metrics = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    loss = acc.Scalars("loss")
    assert [e.step for e in loss] == [m["step"] for m in metrics] == [3, 6]
    assert [e.value for e in loss] == pytest.approx([m["loss"] for m in metrics], rel=1e-6)


def test_a_checkpoint_of_a_users_own_backbone_needs_trust_code(tmp_path):
    """`seqdiff train` builds a backbone from the user's package; `sample`/`eval` import it
    only with trust_code=true, and the refusal says so in one line."""
    import os
    from pathlib import Path

    pkg = tmp_path / "userpkg" / "mybackbones"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "from seqdiff.backbones import DiT\n\n"
        "class MyDiT(DiT):\n    '''A user's backbone: the DiT under another name.'''\n")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(tmp_path / "userpkg"), str(root)])}
    env.pop("HYDRA_FULL_ERROR", None)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "seqdiff", *args], capture_output=True, text=True, timeout=300,
                              env=env, cwd=tmp_path)

    run = tmp_path / "run"
    small = [a for a in TINY if not a.startswith(("trainer.steps", "eval.num_samples"))]
    r = cli("train", f"run_dir={run}", "backbone._target_=mybackbones.MyDiT", "trainer.steps=2", "eval.num_samples=0", *small)
    assert r.returncode == 0, r.stderr[-2000:]
    for command in (["sample", "num_samples=2"], ["eval", "eval.num_samples=0"]):
        r = cli(command[0], f"checkpoint={run}", *command[1:])
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and "Traceback" not in r.stderr and len(lines) == 1, r.stderr[-2000:]
        assert lines[0].startswith("error: ") and "config.json: backbone._target_ is 'mybackbones.MyDiT'" in lines[0]
        assert "trust_code=true" in lines[0]
    r = cli("sample", f"checkpoint={run}", "num_samples=2", "trust_code=true")
    assert r.returncode == 0, r.stderr[-2000:]
    assert len([l for l in r.stdout.splitlines() if l and not l.startswith(">")]) == 2
    r = cli("eval", f"checkpoint={run}", "eval.num_samples=0", "trust_code=true")
    assert r.returncode == 0 and "held-out" in r.stdout, r.stderr[-2000:]


def test_a_length_beyond_the_trained_one_is_sampled_with_a_note_or_by_semi_ar(run_dir, capsys):
    assert main(["sample", f"checkpoint={run_dir}", "num_samples=2", "length=48"]) == 0
    cap = capsys.readouterr()
    assert [len(l) for l in cap.out.splitlines() if l and not l.startswith(">")] == [48, 48]
    assert "note: length=48 is beyond the 32-token windows the model was trained on" in cap.err and "sampler=semi_ar" in cap.err
    assert main(["sample", f"checkpoint={run_dir}", "num_samples=2", "length=80", "sampler=semi_ar", "sampler.num_steps=8"]) == 0
    cap = capsys.readouterr()
    assert [len(l) for l in cap.out.splitlines() if l and not l.startswith(">")] == [80, 80] and "note:" not in cap.err
