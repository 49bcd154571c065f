"""Every backbone YAML in configs/backbone/ obeys the backbone contract on a tiny instance.

The per-class tests (test_dit.py, test_mamba_backbones.py, test_caduceus.py,
text/test_text_hf_mlm.py) build models in Python; this one goes through the configs, as
a user does (Hydra compose with the DNA domain -> ``build_run``), so a YAML that
stops matching its class's contract fails here. Checked for each:

- ``forward(x_t, t, valid) -> logits [B, L, V]`` (V = the domain's vocabulary),
  and ``output_mask`` returns exactly the selected rows;
- the content of padding positions never changes the logits at real positions (right
  and left padding; for causal models also that the future does not leak);
- through the process: SUBS puts zero mass on [MASK] and the other forbidden ids, real
  distributions at masked positions and point masses at unmasked ones (masked
  diffusion); the next-token distributions never predict [MASK] (autoregressive).
"""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from seqdiff.cli.main import config_dir
from seqdiff.run import build_run

CONFIGS = config_dir()
BACKBONES = sorted(p.stem for p in (CONFIGS / "backbone").glob("*.yaml"))
CAUSAL = [n for n in BACKBONES if OmegaConf.load(CONFIGS / "backbone" / f"{n}.yaml").get("causal")
          or "ARMamba" in str(OmegaConf.load(CONFIGS / "backbone" / f"{n}.yaml").get("_target_"))]
# Sizes small enough to run every preset (dit_medium is 24 x 1024 wide as published).
TINY = {"d_model": 16, "n_layers": 2, "n_heads": 2, "cond_dim": 16, "d_state": 4, "dropout": 0.0}
TINY_HF = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32}
B, L, REAL = 2, 12, 8


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: tiny shapes, one intra-op thread


def build(name: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"backbone={name}"])
    d = OmegaConf.to_container(cfg, resolve=True)
    if d["backbone"].get("causal") or d["backbone"]["_target_"].endswith("ARMamba"):
        d["process"] = {"_target_": "seqdiff.processes.AutoregressiveProcess"}
    for k, v in TINY.items():
        if k in d["backbone"]:
            d["backbone"][k] = v
    if isinstance(d["backbone"].get("config"), dict):
        d["backbone"]["config"].update(TINY_HF)
    exp = build_run(d)
    torch.manual_seed(0)
    with torch.no_grad():  # off the init (zero heads, zero adaLN): constant logits would pass anything
        for pname, p in exp.model.named_parameters():
            if "A_log" not in pname and "dt_proj.bias" not in pname:
                p.add_(0.2 * torch.randn_like(p))
    exp.model.eval()
    return exp


@pytest.fixture(scope="module", params=BACKBONES)
def exp(request):
    return build(request.param)


def tokens(exp, generator: torch.Generator) -> torch.Tensor:
    """Ids the data can hold (the DNA bases and N), never [MASK] or [PAD]."""
    allowed = torch.tensor([i for i in range(exp.vocab.size) if i not in (exp.vocab.mask_id, exp.vocab.pad_id)])
    return allowed[torch.randint(0, len(allowed), (B, L), generator=generator)]


def test_logits_shape_and_output_mask(exp):
    g = torch.Generator().manual_seed(0)
    x = tokens(exp, g)
    with torch.no_grad():
        logits = exp.model(x, None, None)
        sel = torch.rand(B, L, generator=g) < 0.4
        packed = exp.model(x, None, None, output_mask=sel)
    assert logits.shape == (B, L, exp.vocab.size)
    assert torch.isfinite(logits).all()
    assert packed.shape == (int(sel.sum()), exp.vocab.size)
    torch.testing.assert_close(packed, logits[sel], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("side", ["right", "left"])
def test_padding_content_does_not_reach_real_positions(exp, side):
    g = torch.Generator().manual_seed(1)
    x = tokens(exp, g)
    real = slice(0, REAL) if side == "right" else slice(L - REAL, L)
    valid = torch.zeros(B, L, dtype=torch.bool)
    valid[:, real] = True
    junk = tokens(exp, g).masked_fill(torch.rand(B, L, generator=g) < 0.3, exp.vocab.pad_id)
    y = torch.where(valid, x, junk)
    with torch.no_grad():
        a, b = exp.model(x, None, valid)[:, real], exp.model(y, None, valid)[:, real]
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        # ... while a real token does reach the others, so the check above can fail:
        # the last real position for bidirectional models, the first for causal ones.
        z = x.clone()
        i = (REAL - 1 if side == "right" else L - 1) if not exp.model.causal else real.start
        z[:, i] = tokens(exp, g)[:, i]
        z[:, i] = torch.where(z[:, i] == x[:, i], (x[:, i] + 1) % 4, z[:, i])  # surely different (A/C/G/T)
        c = exp.model(z, None, valid)[:, real]
    seen = c[:, -1] if exp.model.causal else c[:, 0]
    base = a[:, -1] if exp.model.causal else a[:, 0]
    assert not torch.allclose(seen, base, atol=1e-4)


@pytest.mark.parametrize("name", CAUSAL)
def test_causal_models_do_not_see_the_future(name):
    exp = build(name)
    assert exp.model.causal
    g = torch.Generator().manual_seed(2)
    x = tokens(exp, g)
    y = x.clone()
    y[:, 6:] = tokens(exp, g)[:, 6:]
    with torch.no_grad():
        torch.testing.assert_close(exp.model(x)[:, :6], exp.model(y)[:, :6], rtol=1e-5, atol=1e-5)


def test_process_puts_zero_mass_on_mask(exp):
    g = torch.Generator().manual_seed(3)
    x0 = tokens(exp, g)
    valid = torch.ones(B, L, dtype=torch.bool)
    valid[1, REAL:] = False
    forbidden = exp.vocab.forbidden_mask()
    assert forbidden[exp.vocab.mask_id] and forbidden[exp.vocab.pad_id]
    with torch.no_grad():
        if exp.process.kind == "autoregressive":
            logp = exp.process.log_probs(exp.model, x0, valid)[valid]
            assert torch.isneginf(logp[:, forbidden]).all()
            torch.testing.assert_close(logp.logsumexp(-1), torch.zeros(len(logp)), rtol=0, atol=1e-5)
            return
        masked = (torch.rand(B, L, generator=g) < 0.5) & valid
        masked[0, 0], masked[0, 1] = True, False  # at least one of each
        x_t = x0.masked_fill(masked, exp.vocab.mask_id)
        logp = exp.process.denoise(exp.model, x_t, torch.full((B,), 0.5), valid)
        assert logp.shape == (B, L, exp.vocab.size)
        assert torch.isneginf(logp[..., forbidden]).all()
        m = logp[masked]
        torch.testing.assert_close(m.logsumexp(-1), torch.zeros(len(m)), rtol=0, atol=1e-5)
        assert torch.isfinite(m[:, ~forbidden]).all()  # a real distribution over the allowed ids
        kept = valid & ~masked
        carried = logp[kept].argmax(-1)
        assert torch.equal(carried, x_t[kept]) and torch.equal(logp[kept].amax(-1), torch.zeros(int(kept.sum())))
        sel = masked & (torch.rand(B, L, generator=g) < 0.7)
        packed = exp.process.denoise(exp.model, x_t, torch.full((B,), 0.5), valid, positions=sel)
        torch.testing.assert_close(packed, logp[sel], rtol=1e-5, atol=1e-5)
