"""Importing LongSafari/hyenadna-*-seqlen-hf directories (built here in the published layout).

No network and no published weights: a tiny ``config.json`` + ``model.safetensors`` is written
with the key names and shapes of the HF port (``modeling_hyena.py``: HyenaDNAForCausalLM),
random values, and compared against a direct re-implementation of that port's forward
written below (O(L^2) long convolution, no FFT, no seqdiff code).
"""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import seqdiff
from seqdiff.cli.main import main
from seqdiff.errors import CheckpointError
from seqdiff.eval.judge import SeqdiffJudge, generative_perplexity, load_judge
from seqdiff.interop.hyenadna import DNA_DOMAIN, import_hyenadna, token_rows

CFG = {
    "_name_or_path": "hyenadna-test-hf", "activation_freq": 10, "architectures": ["HyenaDNAForCausalLM"],
    "d_inner": 16, "d_model": 8, "emb_dim": 5, "embed_dropout": 0.1, "filter_order": 6, "hyena_dropout": 0.0,
    "hyena_filter_dropout": 0.0, "hyena_order": 2, "initializer_range": 0.02, "layer_norm_epsilon": 1e-05,
    "max_seq_len": 34, "model_type": "hyenadna", "n_layer": 2, "num_inner_mlps": 2, "pad_token_id": 4,
    "pad_vocab_size_multiple": 8, "short_filter_order": 3, "tie_word_embeddings": False, "torch_dtype": "float32",
    "train_freq": True, "use_bias": True, "vocab_size": 12,
}
P = "hyena.backbone."
HF_A = 7  # HyenaDNA ids: A C G T N = 7..11, [MASK] = 3


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: tiny shapes, one intra-op thread


def published_tensors(cfg: dict = CFG, *, tied_values: bool = True, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with the HF port's names and shapes (random values; filter buffers perturbed
    away from their formulas so the test sees whether the stored values are the ones used)."""
    g = torch.Generator().manual_seed(seed)
    d, F_, e, T, m = cfg["d_model"], cfg["filter_order"], cfg["emb_dim"], cfg["max_seq_len"], cfg["num_inner_mlps"]
    r = lambda *s, scale=0.3: scale * torch.randn(*s, generator=g)  # noqa: E731
    t = {P + "embeddings.word_embeddings.weight": r(16, d, scale=0.5),
         P + "ln_f.weight": 1 + r(d, scale=0.1), P + "ln_f.bias": r(d, scale=0.1)}
    tau = torch.linspace(0, 1, T)
    for i in range(cfg["n_layer"]):
        p, f = f"{P}layers.{i}.", f"{P}layers.{i}.mixer.filter_fn."
        for n in ("norm1", "norm2"):
            t[p + n + ".weight"], t[p + n + ".bias"] = 1 + r(d, scale=0.1), r(d, scale=0.1)
        t[p + "mixer.in_proj.weight"], t[p + "mixer.in_proj.bias"] = r(3 * d, d), r(3 * d, scale=0.1)
        t[p + "mixer.short_filter.weight"], t[p + "mixer.short_filter.bias"] = r(3 * d, 1, 3), r(3 * d, scale=0.1)
        t[p + "mixer.out_proj.weight"], t[p + "mixer.out_proj.bias"] = r(d, d), r(d, scale=0.1)
        t[f + "bias"] = r(d, scale=1.0)
        t[f + "pos_emb.z"] = torch.cat([tau[:, None], torch.cos(tau[:, None] * 3), torch.sin(tau[:, None] * 5),
                                        r(T, e - 3)], 1)[None]
        t[f + "pos_emb.t"] = (tau + 0.01 * torch.rand(T, generator=g))[None, :, None]
        t[f + "modulation.deltas"] = torch.linspace(-3.0, -15.0, d)[None, None] + r(1, 1, d, scale=0.1)
        t[f + "implicit_filter.0.weight"], t[f + "implicit_filter.0.bias"] = r(F_, e), r(F_, scale=0.1)
        t[f + "implicit_filter.1.freq"] = 1.0 + r(1, F_, scale=0.2)  # one shared Sin: safetensors keeps one alias
        for j in range(1, m + 1):
            t[f + f"implicit_filter.{2 * j}.weight"], t[f + f"implicit_filter.{2 * j}.bias"] = r(F_, F_), r(F_, scale=0.1)
        t[f + f"implicit_filter.{2 * m + 2}.weight"] = r(d, F_)
        t[p + "mlp.fc1.weight"], t[p + "mlp.fc1.bias"] = r(cfg["d_inner"], d), r(cfg["d_inner"], scale=0.1)
        t[p + "mlp.fc2.weight"], t[p + "mlp.fc2.bias"] = r(d, cfg["d_inner"]), r(d, scale=0.1)
    t["lm_head.weight"] = t[P + "embeddings.word_embeddings.weight"].clone() if tied_values else r(16, d, scale=0.5)
    return t


def write_hf_dir(path, tensors=None, cfg=CFG, *, fmt="safetensors"):
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(cfg))
    tensors = published_tensors(cfg) if tensors is None else tensors
    if fmt == "safetensors":
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(path / "model.safetensors"))
    else:
        torch.save(tensors, path / "pytorch_model.bin")
    return path


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def reference_forward(tensors: dict, cfg: dict, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """HyenaDNAForCausalLM's forward as modeling_hyena.py describes it, in float64, by loops.

    Returns (logits over HyenaDNA's 16 rows [B, L, 16], final hidden states [B, L, d])."""
    t = {k: v.double() for k, v in tensors.items()}
    d, m = cfg["d_model"], cfg["num_inner_mlps"]
    h = t[P + "embeddings.word_embeddings.weight"][ids]
    B, L, _ = h.shape
    for i in range(cfg["n_layer"]):
        p, f = f"{P}layers.{i}.", f"{P}layers.{i}.mixer.filter_fn."
        a = F.layer_norm(h, (d,), t[p + "norm1.weight"], t[p + "norm1.bias"], 1e-5)
        u = a @ t[p + "mixer.in_proj.weight"].T + t[p + "mixer.in_proj.bias"]  # [B, L, 3d]
        w, wb = t[p + "mixer.short_filter.weight"][:, 0], t[p + "mixer.short_filter.bias"]  # Conv1d(pad 2)[..., :L]
        uc = torch.stack([wb + sum(u[:, s] * w[:, 2 - (pos - s)] for s in range(max(0, pos - 2), pos + 1))
                          for pos in range(L)], 1)
        x0, x1, v = uc.split(d, dim=-1)
        freq = t[f + "implicit_filter.1.freq"]
        k = t[f + "pos_emb.z"][0, :L]
        for j in range(m + 1):
            k = torch.sin(freq * (k @ t[f + f"implicit_filter.{2 * j}.weight"].T + t[f + f"implicit_filter.{2 * j}.bias"]))
        k = k @ t[f + f"implicit_filter.{2 * m + 2}.weight"].T  # [L, d]
        k = k * (torch.exp(-t[f + "pos_emb.t"][0, :L] * t[f + "modulation.deltas"][0].abs()) + 0.05)
        gin = v * x1
        y = torch.stack([sum(k[pos - s] * gin[:, s] for s in range(pos + 1)) + t[f + "bias"] * gin[:, pos]
                         for pos in range(L)], 1)
        h = h + (y * x0) @ t[p + "mixer.out_proj.weight"].T + t[p + "mixer.out_proj.bias"]
        a = F.layer_norm(h, (d,), t[p + "norm2.weight"], t[p + "norm2.bias"], 1e-5)
        h = h + gelu_tanh(a @ t[p + "mlp.fc1.weight"].T + t[p + "mlp.fc1.bias"]) @ t[p + "mlp.fc2.weight"].T + t[p + "mlp.fc2.bias"]
    hf = F.layer_norm(h, (d,), t[P + "ln_f.weight"], t[P + "ln_f.bias"], 1e-5)
    return hf @ t["lm_head.weight"].T, hf


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    root = tmp_path_factory.mktemp("hyena")
    tensors = published_tensors()
    hf = write_hf_dir(root / "hf", tensors)
    out = import_hyenadna(hf, root / "run")
    return tensors, out


def test_token_rows_are_the_fixed_permutation():
    from seqdiff_recipes.dna import DNADomain

    assert token_rows(DNADomain().vocab) == [7, 8, 9, 10, 11, 3, 4]  # A C G T N [MASK] [PAD]
    assert token_rows(DNADomain(bos=True, eos=True).vocab) == [7, 8, 9, 10, 11, 3, 4, 2, 1]  # + [BOS] [EOS]=[SEP]


def test_every_tensor_lands_where_it_should(imported):
    tensors, out = imported
    run = seqdiff.load(out)
    ours = run.model.state_dict()
    rows = torch.tensor([7, 8, 9, 10, 11, 3, 4])
    table = {"embedding.weight": tensors[P + "embeddings.word_embeddings.weight"][rows],
             "lm_head.weight": tensors["lm_head.weight"][rows],
             "norm_f.weight": tensors[P + "ln_f.weight"], "norm_f.bias": tensors[P + "ln_f.bias"]}
    for i in range(2):
        p, q = f"{P}layers.{i}.", f"layers.{i}."
        f, g = p + "mixer.filter_fn.", q + "mixer.filter."
        for n in ("norm1", "norm2", "mixer.in_proj", "mixer.out_proj"):
            for b in ("weight", "bias"):
                table[f"{q}{n}.{b}"] = tensors[f"{p}{n}.{b}"]
        for n in ("fc1", "fc2"):
            for b in ("weight", "bias"):
                table[f"{q}{n}.{b}"] = tensors[f"{p}mlp.{n}.{b}"]
        table[q + "mixer.short_weight"] = tensors[p + "mixer.short_filter.weight"].squeeze(1)
        table[q + "mixer.short_bias"] = tensors[p + "mixer.short_filter.bias"]
        table[g + "D"] = tensors[f + "bias"]
        table[g + "z"] = tensors[f + "pos_emb.z"].squeeze(0)
        table[g + "t"] = tensors[f + "pos_emb.t"].reshape(-1)
        table[g + "deltas"] = tensors[f + "modulation.deltas"].reshape(-1)
        table[g + "freq"] = tensors[f + "implicit_filter.1.freq"].reshape(-1)
        for j, hf_index in enumerate((0, 2, 4)):
            for b in ("weight", "bias"):
                table[f"{g}linears.{j}.{b}"] = tensors[f"{f}implicit_filter.{hf_index}.{b}"]
        table[g + "out.weight"] = tensors[f + "implicit_filter.6.weight"]
    assert set(table) == set(ours)  # every seqdiff tensor is accounted for ...
    for name, want in table.items():  # ... and holds exactly the published values
        assert torch.equal(ours[name], want), name
    assert run.model.lm_head.weight is run.model.embedding.weight  # equal values in the file: tied
    meta = run.checkpoint.meta["imported"]
    assert meta["token_rows"] == {"A": 7, "C": 8, "G": 9, "T": 10, "N": 11, "[MASK]": 3, "[PAD]": 4}
    assert meta["dropped_hyenadna_ids"] == [0, 1, 2, 5, 6, 12, 13, 14, 15]


@pytest.mark.parametrize("tied_values", [True, False])
def test_imported_forward_matches_the_reference_forward(tmp_path, tied_values):
    tensors = published_tensors(tied_values=tied_values, seed=1)
    out = import_hyenadna(write_hf_dir(tmp_path / "hf", tensors), tmp_path / "run")
    run = seqdiff.load(out)
    assert (run.model.lm_head.weight is run.model.embedding.weight) == tied_values
    x = torch.randint(0, 5, (2, 20), generator=torch.Generator().manual_seed(4))  # seqdiff ids A..N
    to_hf = torch.tensor([7, 8, 9, 10, 11, 3, 4])
    ref, _ = reference_forward(tensors, CFG, to_hf[x])
    with torch.no_grad():
        ours = run.model.double()(x)
    torch.testing.assert_close(ours, ref[..., to_hf], rtol=1e-9, atol=1e-9)


def test_config_tied_head_needs_no_lm_head(tmp_path):
    tensors = published_tensors(tied_values=False, seed=2)
    del tensors["lm_head.weight"]
    out = import_hyenadna(write_hf_dir(tmp_path / "hf", tensors, {**CFG, "tie_word_embeddings": True}), tmp_path / "run")
    run = seqdiff.load(out)
    assert run.model.lm_head.weight is run.model.embedding.weight
    x = torch.randint(0, 5, (1, 10), generator=torch.Generator().manual_seed(6))
    to_hf = torch.tensor([7, 8, 9, 10, 11, 3, 4])
    ref, _ = reference_forward({**tensors, "lm_head.weight": tensors[P + "embeddings.word_embeddings.weight"]}, CFG, to_hf[x])
    with torch.no_grad():
        torch.testing.assert_close(run.model.double()(x), ref[..., to_hf], rtol=1e-9, atol=1e-9)


def test_runs_open_sample_and_evaluate(imported, tmp_path, capsys):
    _, out = imported
    run = seqdiff.load(out)
    assert run.process.kind == "autoregressive" and run.model.causal and run.default_length() == 32
    assert main(["sample", f"checkpoint={out}", "sampler=autoregressive", "num_samples=3", "length=24"]) == 0
    seqs = [l for l in capsys.readouterr().out.splitlines() if l and not l.startswith(">")]
    assert len(seqs) == 3 and all(len(s) == 24 and set(s) <= set("ACGTN") for s in seqs)
    args = ["eval", f"checkpoint={out}", "sampler=autoregressive", "data=markov", "data.seq_len=16", "data.train_tokens=4096",
            "data.valid_tokens=1024", "data.test_tokens=1024", "data.record_length=256", "eval.max_sequences=8",
            "eval.num_samples=4", f"eval.judge={out}", "eval.diversity=false"]
    assert main(args) == 0
    report = json.loads((out / "eval.json").read_text())
    assert report["likelihood"]["estimator"] == "exact" and report["samples"]["judge"]["num_samples"] == 4
    # the judge's features give the Fréchet distance beside its real-vs-real floor
    assert report["samples"]["frechet_n"] == 4 and report["samples"]["frechet_floor"] > 0


def test_the_documented_commands_need_no_group_options(imported, tmp_path, capsys):
    """docs/hyenadna.md: an import records no group options; sample uses the run's own AR
    sampler and ``data.fasta=...`` is a key of its (inferred) ``data=fasta`` section."""
    from support.genome import write_fasta

    _, out = imported
    assert main(["sample", f"checkpoint={out}", "num_samples=2", "length=16"]) == 0
    assert len([l for l in capsys.readouterr().out.splitlines() if l and not l.startswith(">")]) == 2
    fa = write_fasta(tmp_path / "genome.fa", {"chr1": 3000, "chr2": 2000}, seed=3)
    assert main(["eval", f"checkpoint={out}", f"data.fasta={fa}", "data.seq_len=16", "eval.max_sequences=4",
                 "eval.num_samples=0"]) == 0
    report = json.loads((out / "eval.json").read_text())
    assert report["reference"]["fasta"] == str(fa) and report["likelihood"]["num_tokens"] == 4 * 16


def test_judge_nll_and_features_are_the_reference_models(imported):
    tensors, out = imported
    judge = load_judge(str(out))
    assert isinstance(judge, SeqdiffJudge)
    run = seqdiff.load(out)
    samples = torch.randint(0, 5, (5, 12), generator=torch.Generator().manual_seed(5))
    res, toks = generative_perplexity(judge, samples, run.domain)
    # Reference: HyenaDNA reads [MASK] x_0 .. x_{L-2} and predicts x_0 .. x_{L-1}; seqdiff keeps
    # the base rows (A C G T N) and renormalises over them.
    hf = samples + HF_A
    inp = torch.cat([torch.full((5, 1), 3), hf[:, :-1]], 1)
    logits, hidden = reference_forward(tensors, CFG, inp)
    logp = torch.log_softmax(logits[..., HF_A : HF_A + 5], -1)
    nll = -logp.gather(-1, samples.unsqueeze(-1)).sum()
    assert res.num_tokens == 60 and not res.retokenized
    assert abs(res.nats_per_token - float(nll) / 60) < 1e-5
    assert abs(res.gen_ppl - math.exp(float(nll) / 60)) < 1e-4
    feats = judge.features(toks)
    assert feats.shape == (5, CFG["d_model"])
    torch.testing.assert_close(feats.double(), hidden.mean(1), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------ bad input
class Payload:  # a pickled object that weights_only loading must refuse
    def __reduce__(self):
        return (print, ("this would run",))


def _variant(kind):
    cfg, t = dict(CFG), published_tensors()
    key = None
    if kind == "missing":
        key = P + "layers.1.mixer.short_filter.bias"
        del t[key]
    elif kind == "shape":
        key = P + "layers.0.mixer.in_proj.weight"
        t[key] = torch.zeros(20, 8)
    elif kind == "model_type":
        cfg["model_type"], key = "caduceus", "model_type"
    elif kind == "n_layer":
        cfg["n_layer"], key = 3, "n_layer=3"
    elif kind == "d_model":
        cfg["d_model"], key = 16, "d_model=16"
    elif kind == "unexpected":
        key = "score.weight"
        t[key] = torch.zeros(2, 8)
    elif kind == "extra_key":
        key = P + "layers.0.mixer.filter_fn.implicit_filter.8.weight"
        t[key] = torch.zeros(6, 6)
    elif kind == "freq":
        key = P + "layers.0.mixer.filter_fn.implicit_filter.3.freq"
        t[key] = t[P + "layers.0.mixer.filter_fn.implicit_filter.1.freq"] + 1
    elif kind == "order":
        cfg["hyena_order"], key = 3, "hyena_order=3"
    elif kind == "z_rows":
        cfg["max_seq_len"], key = 40, "max_seq_len=40"
    return cfg, t, key


@pytest.mark.parametrize("kind", ["missing", "shape", "model_type", "n_layer", "d_model", "unexpected", "extra_key",
                                  "freq", "order", "z_rows"])
def test_bad_checkpoints_fail_with_one_line(tmp_path, kind):
    cfg, t, key = _variant(kind)
    hf = write_hf_dir(tmp_path / "hf", t, cfg)
    with pytest.raises(CheckpointError) as e:
        import_hyenadna(hf, tmp_path / "run")
    msg = str(e.value)
    assert "\n" not in msg and key in msg, msg
    assert not (tmp_path / "run" / "checkpoints").exists()  # nothing half-written


def test_shape_error_names_key_and_shapes(tmp_path):
    cfg, t, key = _variant("shape")
    with pytest.raises(CheckpointError, match=r"in_proj\.weight has shape \[20, 8\].*d_model=8.*implies \[24, 8\]"):
        import_hyenadna(write_hf_dir(tmp_path / "hf", t, cfg), tmp_path / "run")


def test_pytorch_bin_loads_only_as_plain_tensors(tmp_path):
    t = published_tensors()
    out = import_hyenadna(write_hf_dir(tmp_path / "hf", t, fmt="bin"), tmp_path / "run")
    ref = import_hyenadna(write_hf_dir(tmp_path / "hf2", t), tmp_path / "run2")
    a, b = seqdiff.load(out).model.state_dict(), seqdiff.load(ref).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    bad = write_hf_dir(tmp_path / "evil", {**t, "x": Payload()}, fmt="bin")
    with pytest.raises(CheckpointError) as e:
        import_hyenadna(bad, tmp_path / "run3")
    assert "\n" not in str(e.value) and "refused" in str(e.value) and "save_file" in str(e.value)


def test_existing_run_and_bad_seq_len_are_refused(imported, tmp_path):
    tensors, out = imported
    hf = write_hf_dir(tmp_path / "hf", tensors)
    with pytest.raises(CheckpointError, match="already holds a run"):
        import_hyenadna(hf, out)
    with pytest.raises(ValueError, match="seq_len"):
        import_hyenadna(hf, tmp_path / "run", seq_len=35)


def test_tokenizer_config_with_other_characters_is_refused(tmp_path):
    hf = write_hf_dir(tmp_path / "hf")
    (hf / "tokenizer_config.json").write_text(json.dumps({"characters": ["A", "C", "G", "U", "N"]}))
    with pytest.raises(CheckpointError, match="characters"):
        import_hyenadna(hf, tmp_path / "run")


def test_cli_import(tmp_path, capsys):
    hf = write_hf_dir(tmp_path / "hf")
    assert main(["import", f"hf_dir={hf}", f"out={tmp_path / 'run'}", "seq_len=20"]) == 0
    assert seqdiff.load(tmp_path / "run").default_length() == 20
    assert main(["import", str(hf), str(tmp_path / "run2")]) == 0
    bad = write_hf_dir(tmp_path / "bad", cfg={**CFG, "model_type": "mamba"})
    assert main(["import", str(bad), str(tmp_path / "run3")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "model_type 'mamba'" in err[0]
    assert DNA_DOMAIN["alphabet"] == "ACGTN"
