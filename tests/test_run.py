"""seqdiff/run.py builds against the contracts: each section is checked with isinstance at
build time (a one-line ConfigError naming the section and the contract), a domain gets its
checkpoint artifacts because it declares ``uses_artifacts`` (not because its constructor
happens to take ``artifacts_dir``), and a process's reference model is bound, not loaded."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch

from seqdiff.data import DataSource
from seqdiff.domains import Domain
from seqdiff.errors import CheckpointError, ConfigError
from seqdiff.io.checkpoint import save_checkpoint
from seqdiff.processes import Process
from seqdiff.run import build_run, load
from support.runs import tiny_config

DUCKS = '''
import torch
from seqdiff_recipes.alphabet import AlphabetDomain
from seqdiff_recipes.synthetic import MarkovData
from seqdiff.domains import Domain
from seqdiff.processes import MaskedDiffusion
from seqdiff.vocab import VocabSpec


class DuckDomain:
    """Everything a domain has, but not written against the contract."""
    name = "duck"

    def __init__(self):
        self.inner = AlphabetDomain("ACGTN")
        self.vocab, self.ids = self.inner.vocab, self.inner.ids

    def encode(self, text, *, where="input"):
        return self.inner.encode(text, where=where)

    def decode(self, ids):
        return self.inner.decode(ids)


class DuckProcess:
    kind = "masked"
    time_conditioning = False

    def __init__(self, vocab):
        self.inner = MaskedDiffusion(vocab)
        self.schedule = self.inner.schedule

    def loss(self, *a, **k):
        return self.inner.loss(*a, **k)


class DuckData:
    seq_len = 16

    def __init__(self, domain):
        self.inner = MarkovData(domain, seq_len=16, train_tokens=2048, valid_tokens=512, test_tokens=512,
                                record_length=256)

    def train_batch(self, step, batch_size, *, rank=0, world_size=1):
        return self.inner.train_batch(step, batch_size, rank=rank, world_size=world_size)

    def eval_batches(self, split="valid", batch_size=64, max_sequences=None):
        return self.inner.eval_batches(split, batch_size, max_sequences)


class DuckSampler:
    def __init__(self, vocab, num_steps=4):
        self.vocab = vocab


class DuckBackbone(torch.nn.Module):
    causal = False
    time_conditioning = False

    def __init__(self, vocab_size):
        super().__init__()
        self.head = torch.nn.Embedding(vocab_size, vocab_size)

    def forward(self, x_t, t=None, valid=None, output_mask=None):
        out = self.head(x_t)
        return out if output_mask is None else out[output_mask]


class Stamped(Domain):
    """A domain with state outside its config: a stamp written into every checkpoint."""
    uses_artifacts = True

    def __init__(self, stamp="fresh", artifacts_dir=None):
        self.inner = AlphabetDomain("ACGTN")
        self.vocab = self.inner.vocab
        self.stamp = stamp if artifacts_dir is None else open(f"{artifacts_dir}/stamp.txt").read()

    def encode(self, text, *, where="input"):
        return self.inner.encode(text, where=where)

    def decode(self, ids):
        return self.inner.decode(ids)

    def save_artifacts(self, directory):
        open(f"{directory}/stamp.txt", "w").write(self.stamp)


class Undeclared(Stamped):
    """Takes artifacts_dir but does not declare uses_artifacts: it is not given one."""
    uses_artifacts = False
'''


@pytest.fixture
def ducks(tmp_path, monkeypatch):
    (tmp_path / "ducks.py").write_text(textwrap.dedent(DUCKS))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "ducks"


@pytest.mark.parametrize("section,target,contract", [
    ("domain", "ducks.DuckDomain", "seqdiff.domains.Domain"),
    ("process", "ducks.DuckProcess", "seqdiff.processes.Process"),
    ("backbone", "ducks.DuckBackbone", "seqdiff.backbones.Backbone"),
])
def test_a_section_not_written_against_its_contract_is_refused_at_build_time(ducks, section, target, contract):
    cfg = tiny_config()
    cfg[section] = {"_target_": target}
    with pytest.raises(ConfigError) as e:
        build_run(cfg)
    msg = str(e.value)
    assert msg == f"{section}: {target} does not implement {contract} (subclass it; see docs/extending.md)"
    assert "\n" not in msg


def test_data_and_sampler_are_checked_when_built(ducks):
    cfg = tiny_config()
    cfg["data"] = {"_target_": "ducks.DuckData"}
    run = build_run(cfg)
    with pytest.raises(ConfigError, match=r"^data: ducks.DuckData does not implement seqdiff.data.DataSource"):
        run.data
    with pytest.raises(ConfigError, match=r"^sampler: ducks.DuckSampler does not implement seqdiff.samplers.Sampler"):
        run.build_sampler({"_target_": "ducks.DuckSampler"})
    good = build_run(tiny_config())
    assert isinstance(good.domain, Domain) and isinstance(good.process, Process) and isinstance(good.data, DataSource)


def test_the_backbone_is_checked_against_the_process_at_build_time():
    cfg = tiny_config()
    cfg["backbone"]["causal"] = True
    with pytest.raises(ConfigError, match="a causal backbone cannot be trained with the masked process"):
        build_run(cfg)
    cfg = tiny_config()
    cfg["process"] = {"_target_": "seqdiff.processes.AutoregressiveProcess"}
    with pytest.raises(ConfigError, match="the autoregressive process needs a causal backbone"):
        build_run(cfg)
    cfg = tiny_config()
    cfg["process"]["time_conditioning"] = True
    with pytest.raises(ConfigError, match="process.time_conditioning=True but the backbone"):
        build_run(cfg)


def _save(run, root):
    return save_checkpoint(root, 1, model=run.model, config=run.config, vocab=run.vocab, artifacts=run.domain)


def test_artifacts_go_to_the_domain_that_declares_them(ducks, tmp_path):
    for target, stamp_after_load in (("ducks.Stamped", "written at training"), ("ducks.Undeclared", "fresh")):
        cfg = tiny_config()
        cfg["domain"] = {"_target_": target}
        run = build_run(cfg)
        run.domain.stamp = "written at training"
        path = _save(run, tmp_path / target)
        assert (path / "artifacts").is_dir() == (target == "ducks.Stamped")
        back = load(path, trust_code=True)
        assert back.domain.stamp == stamp_after_load


def test_the_ens_reference_is_bound_at_build_time_and_loaded_on_first_use(tmp_path):
    ref_run = build_run(tiny_config())
    ref_path = _save(ref_run, tmp_path / "ref")
    for path in (str(ref_path), str(tmp_path / "missing")):
        cfg = tiny_config()
        cfg["process"].update(corruption="ens", ens_entropy=path, ens_groups=2)
        run = build_run(cfg)  # nothing is opened here: a missing path is not an error yet
        assert run.process.reference == path and run.process._ens_reference is None
        x = run.data.train_batch(0, 4)
        if path.endswith("missing"):
            with pytest.raises(CheckpointError, match="missing"):
                run.process.loss(run.model, x.x0, x.valid, generator=torch.Generator().manual_seed(0))
            continue
        out = run.process.loss(run.model, x.x0, x.valid, generator=torch.Generator().manual_seed(0))
        net, proc = run.process._ens_reference
        assert torch.isfinite(out.loss) and net is not run.model and not any(p.requires_grad for p in net.parameters())
        assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), ref_run.model.state_dict().values()))
        assert proc.kind == "masked"
        out.loss.backward()  # gradients reach the trained model, never the reference
        assert all(p.grad is None for p in net.parameters())
        run.process.loss(run.model, x.x0, x.valid, generator=torch.Generator().manual_seed(1))
        assert run.process._ens_reference[0] is net  # loaded once


def test_an_unbound_reference_is_a_clear_error():
    from seqdiff.processes import MaskedDiffusion
    from support.toys import ExactDenoiser, Toy

    toy = Toy(3, 4)
    proc = MaskedDiffusion(toy.vocab, corruption="ens", ens_entropy="some/run")
    with pytest.raises(ConfigError, match="reference model 'some/run' cannot be loaded: no loader was bound"):
        proc.loss(ExactDenoiser(toy), toy.seqs[:2], generator=torch.Generator().manual_seed(0))


def test_a_checkpoint_config_json_is_not_mistaken_for_a_hugging_face_model(tmp_path):
    from seqdiff.io.checkpoint import is_hf_model_dir

    path = _save(build_run(tiny_config()), tmp_path / "ck")
    assert not is_hf_model_dir(path)
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text(json.dumps({"model_type": "roberta"}))
    assert is_hf_model_dir(tmp_path / "hf")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_bytes(b"\xff{")
    assert not is_hf_model_dir(tmp_path / "bad") and not is_hf_model_dir(tmp_path / "nothing")
