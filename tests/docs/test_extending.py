"""docs/extending.md runs: each section's ```python blocks are written, in order, to the module
its heading names (the package ``my_extension``), each ```python usage block is executed, and
each section's claim is checked here too: the backbone trains a step (and never reads padding),
the sampler honours fixed tokens, the process's loss is finite (and its evaluation a bound),
the domain round-trips, the data source's batches train with the trainer."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "extending.md"
FENCE = re.compile(r"^```(\w[^\n]*)\n(.*?)^```\s*$", re.S | re.M)
MODULE = re.compile(r"\((my_extension/\w+\.py)\)")


def sections() -> list[dict]:
    """``[{title, module, code, usage}]`` in the page's order."""
    out = []
    for chunk in re.split(r"^## ", DOC.read_text(), flags=re.M)[1:]:
        title = chunk.splitlines()[0].strip()
        m = MODULE.search(title)
        blocks = [(info.split(), body) for info, body in FENCE.findall(chunk)]
        out.append({
            "title": title,
            "module": m.group(1) if m else None,
            "code": [b for info, b in blocks if info == ["python"]],
            "usage": [b for info, b in blocks if info == ["python", "usage"]],
            "last": blocks[-1][0] if blocks else None,
        })
    return out


SECTIONS = sections()


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """The page's modules as the package ``my_extension`` on sys.path."""
    root = tmp_path_factory.mktemp("ext")
    (root / "my_extension").mkdir()
    (root / "my_extension" / "__init__.py").write_text('"""docs/extending.md, as a package."""\n')
    for s in SECTIONS:
        if s["module"]:
            (root / s["module"]).write_text("\n\n".join(s["code"]))
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))
    for name in [m for m in sys.modules if m == "my_extension" or m.startswith("my_extension.")]:
        del sys.modules[name]


def _section(word: str) -> dict:
    return next(s for s in SECTIONS if word in s["title"].lower())


def test_the_page_covers_every_extension_point_and_each_section_ends_with_an_example():
    titles = [s["title"].lower() for s in SECTIONS]
    for word in ("backbone", "sampler", "process", "domain", "data source"):
        assert any(word in t for t in titles), word
    for s in SECTIONS:
        assert s["usage"] and s["last"] == ["python", "usage"], s["title"]  # ends with the example that runs
        if s["module"]:
            assert s["code"], s["title"]


@pytest.mark.parametrize("title", [s["title"] for s in SECTIONS])
def test_every_example_runs(package, title):
    s = next(x for x in SECTIONS if x["title"] == title)
    for i, block in enumerate(s["usage"]):
        exec(compile(block, f"{DOC.name}:{title}:usage{i}", "exec"), {"__name__": f"docs_example_{i}"})


def _run(**sections):
    from seqdiff.run import build_run
    from support.runs import tiny_config

    cfg = tiny_config()
    for key, value in sections.items():
        cfg[key] = value
    return build_run(cfg)


def test_the_backbone_trains_a_step_and_never_reads_padding(package):
    run = _run(backbone={"_target_": "my_extension.backbone.NeighbourMixer", "d_model": 16})
    before = [p.detach().clone() for p in run.model.parameters()]
    batch = run.data.train_batch(0, 8)
    out = run.process.loss(run.model, batch.x0, batch.valid, generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    torch.optim.SGD(run.model.parameters(), lr=0.5).step()
    assert torch.isfinite(out.loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, run.model.parameters()))
    x = batch.x0[:2].clone()
    valid = torch.ones_like(x, dtype=torch.bool)
    valid[:, -4:] = False
    y = x.clone()
    y[:, -4:] = (y[:, -4:] + 1) % 4  # other tokens at the padded positions
    run.model.eval()
    a, b = run.model(x, None, valid)[valid], run.model(y, None, valid)[valid]
    assert torch.equal(a, b)


def test_the_sampler_honours_fixed_tokens(package):
    from seqdiff.samplers import Condition

    run = _run()
    sampler = run.build_sampler({"_target_": "my_extension.sampler.OneAtATime"})
    cond = Condition.from_segments(16, {0: [0, 1, 2], 10: [3, 3]})
    out = run.generate(5, 16, cond, sampler=sampler, seed=1)
    assert (out.tokens[:, :3] == torch.tensor([0, 1, 2])).all() and (out.tokens[:, 10:12] == 3).all()
    assert not (out.tokens == run.vocab.mask_id).any() and out.nfe.tolist() == [11] * 5


def test_the_process_has_a_finite_loss_and_a_bound_for_evaluation(package):
    from seqdiff.eval.likelihood import evaluate_likelihood
    from seqdiff.processes import Process
    from seqdiff.train.trainer import train_metric_name

    run = _run(process={"_target_": "my_extension.process.FixedRateMasking", "rate": 0.5})
    assert isinstance(run.process, Process)
    batch = run.data.train_batch(0, 8)
    out = run.process.loss(run.model, batch.x0, batch.valid, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out.loss) and out.loss.requires_grad and (out.num_tokens == 16).all()
    assert train_metric_name(run.process) == "train_mlm_cross_entropy_bits_per_token"  # not a likelihood's name
    res, _, _ = evaluate_likelihood(run.model, run.process, run.data.eval_batches("valid", 8, 16), draws=2)
    assert res.bound and res.kind == "NELBO" and res.num_sequences == 16
    with pytest.raises(TypeError):
        run.process.nelbo(run.model, batch.x0, estimater="count")


def test_the_domain_round_trips(package):
    run = _run(domain={"_target_": "my_extension.domain.CodonDomain"},
               data={"_target_": "my_extension.data.PlantedMotif", "motif": "ATG", "seq_len": 8})
    d = run.domain
    ids = torch.randint(0, 64, (50,), generator=torch.Generator().manual_seed(0)).tolist()
    assert d.encode(d.decode(ids)) == ids and d.decode(d.encode("ATGTAA")) == "ATGTAA"
    assert run.vocab.size == 66 and run.model.vocab_size == 66  # the backbone is built on the domain's vocabulary
    from seqdiff.errors import DataError

    with pytest.raises(DataError, match=r"data.motif: 4 bases is not a whole number of codons"):
        _run(domain={"_target_": "my_extension.domain.CodonDomain"},
             data={"_target_": "my_extension.data.PlantedMotif", "motif": "ATGG", "seq_len": 8}).data


def test_the_data_source_gives_batches_the_trainer_accepts(package, tmp_path):
    from seqdiff.train.trainer import Trainer, TrainerConfig

    run = _run(domain={"_target_": "my_extension.domain.CodonDomain"},
               data={"_target_": "my_extension.data.PlantedMotif", "motif": "ATGGCC", "seq_len": 8})
    tcfg = TrainerConfig(steps=2, batch_size=4, log_every=1, eval_every=2, eval_sequences=8, ckpt_every=0,
                         progress=False, tensorboard=False, device="cpu")
    result = Trainer(run.model, run.process, run.data, tcfg, run_dir=tmp_path / "run", vocab=run.vocab,
                     run_config=run.config, log=lambda s: None).fit()
    assert result.step == 2 and all(torch.isfinite(torch.tensor(h["loss"])) for h in result.history)
    assert "valid_bits_per_token" in result.history[-1]
