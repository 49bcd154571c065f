"""The process contract (seqdiff/processes/base.py): declared attributes, explicit signatures
(a misspelt keyword is a TypeError, never swallowed), one backbone check, and nelbo honest
under ENS (uniform masking: the figure its estimand names)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from seqdiff.backbones import DiT
from seqdiff.errors import ConfigError
from seqdiff.processes import AutoregressiveProcess, LossOutput, MaskedDiffusion, Process
from seqdiff.schedules import LogLinearSchedule
from support.toys import ExactDenoiser, Toy

ROOT = Path(__file__).resolve().parents[2]


def _toy():
    toy = Toy(3, 4, seed=3)
    return toy, ExactDenoiser(toy, noise=0.2), toy.seqs[:6]


def test_both_processes_implement_the_contract_with_declared_attributes():
    toy, _, _ = _toy()
    md, ar = MaskedDiffusion(toy.vocab), AutoregressiveProcess(toy.vocab)
    for p in (md, ar):
        assert isinstance(p, Process)
        assert p.estimator in p.estimators and isinstance(p.objective, str)
    assert (md.kind, md.causal, md.exact_likelihood, md.loss_is_nelbo) == ("masked", False, False, False)  # time, t_min>0
    assert md.estimators == ("time", "count") and md.schedule is not None and md.num_steps == 0
    assert (ar.kind, ar.causal, ar.exact_likelihood, ar.objective, ar.loss_is_nelbo) == (
        "autoregressive", True, True, "nll", True)
    assert ar.estimators == ("exact",) and ar.schedule is None and ar.time_conditioning is False
    assert ar.estimate_is_bound("exact") and ar.estimand("exact") == "exact NLL"
    assert MaskedDiffusion(toy.vocab, LogLinearSchedule(eps=0.0), t_min=0.0).loss_is_nelbo
    with pytest.raises(TypeError, match="abstract"):
        Process()  # the contract itself cannot be instantiated


@pytest.mark.parametrize("method", ["loss", "nelbo"])
def test_a_misspelt_keyword_raises_instead_of_being_swallowed(method):
    toy, model, x = _toy()
    g = torch.Generator().manual_seed(0)
    for proc, net in ((MaskedDiffusion(toy.vocab), model),
                      (AutoregressiveProcess(toy.vocab), DiT(toy.vocab.size, d_model=8, n_layers=1, n_heads=2, causal=True))):
        with pytest.raises(TypeError, match="genrator"):
            getattr(proc, method)(net, x, genrator=g)
        with pytest.raises(TypeError, match="fixd"):
            getattr(proc, method)(net, x, fixd=torch.zeros_like(x, dtype=torch.bool))
        with pytest.raises(TypeError):  # everything after valid is keyword-only
            getattr(proc, method)(net, x, None, None)
        out = getattr(proc, method)(net, x, generator=g)
        assert isinstance(out, LossOutput) and torch.isfinite(out.loss)


def test_the_autoregressive_nelbo_accepts_only_its_exact_estimator():
    toy = Toy(3, 4)
    ar = AutoregressiveProcess(toy.vocab)
    net = DiT(toy.vocab.size, d_model=8, n_layers=1, n_heads=2, causal=True)
    x = toy.seqs[:3]
    assert torch.equal(ar.nelbo(net, x, estimator="exact").nelbo, ar.nelbo(net, x).nelbo)
    with pytest.raises(ValueError, match=r"one of \('exact',\)"):
        ar.nelbo(net, x, estimator="count")


def test_check_backbone_is_the_one_place_that_checks_causality_and_time_conditioning():
    toy = Toy(3, 4)
    md, ar = MaskedDiffusion(toy.vocab), AutoregressiveProcess(toy.vocab)
    causal = DiT(toy.vocab.size, d_model=8, n_layers=1, n_heads=2, causal=True)
    bidir = DiT(toy.vocab.size, d_model=8, n_layers=1, n_heads=2)
    timed = DiT(toy.vocab.size, d_model=8, n_layers=1, n_heads=2, time_conditioning=True)
    md.check_backbone(bidir)
    ar.check_backbone(causal)
    with pytest.raises(ConfigError, match="autoregressive process needs a causal backbone"):
        ar.check_backbone(bidir)
    with pytest.raises(ConfigError, match="causal backbone cannot be trained with the masked process"):
        md.check_backbone(causal)
    with pytest.raises(ConfigError, match="process.time_conditioning=False but the backbone was built with "
                                          "time_conditioning=True"):
        md.check_backbone(timed)
    MaskedDiffusion(toy.vocab, time_conditioning=True).check_backbone(timed)
    # the losses call the same check (causality; DDP wrappers are looked through)
    x = toy.seqs[:2]
    with pytest.raises(ConfigError, match="needs a causal backbone"):
        ar.loss(bidir, x)
    with pytest.raises(ConfigError, match="cannot be trained with the masked process"):
        md.loss(causal, x, generator=torch.Generator().manual_seed(0))


def test_nelbo_under_ens_corruption_masks_uniformly_and_is_the_uniform_estimate():
    """The ENS objective is loss's; nelbo of the same process is the estimator's figure
    (before, nelbo without an estimator returned the ENS objective under the NELBO's name)."""
    toy, model, x = _toy()
    ens = MaskedDiffusion(toy.vocab, corruption="ens", estimator="count", ens_groups=2)
    uni = MaskedDiffusion(toy.vocab, estimator="count")
    a = ens.nelbo(model, x, generator=torch.Generator().manual_seed(4)).nelbo
    b = uni.nelbo(model, x, generator=torch.Generator().manual_seed(4)).nelbo
    assert torch.equal(a, b)
    c = ens.loss(model, x, generator=torch.Generator().manual_seed(4)).nelbo
    assert not torch.equal(a, c)  # the ENS objective is another number
    assert ens.objective == "ens_objective" and not ens.loss_is_nelbo and ens.estimate_is_bound("count")


def _imports(path: Path) -> list[str]:
    """Every module a file imports, module level and inside functions alike."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_processes_import_nothing_above_them():
    """Processes know backbones only through the contract; loading a checkpoint (seqdiff.run),
    a Hugging Face model, samplers, evaluation, training or IO is above them."""
    allowed = ("seqdiff.processes", "seqdiff.backbones.base", "seqdiff.schedules", "seqdiff.vocab",
               "seqdiff.errors", "seqdiff.utils.random")
    bad = []
    for f in sorted((ROOT / "seqdiff" / "processes").glob("*.py")):
        for name in _imports(f):
            if name.startswith("seqdiff") and not name.startswith(allowed):
                bad.append(f"{f.name}: {name}")
    assert bad == []
