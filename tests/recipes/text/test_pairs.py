"""Source -> target pairs: the source is fixed (visible, never masked, never scored) in
training and at sampling; the loss counts target tokens only; bad JSONL lines name file:line."""

from __future__ import annotations

import json

import pytest
import torch

from seqdiff_recipes.text import PairData, TextDomain
from seqdiff.backbones.base import Backbone
from seqdiff.errors import DataError
from seqdiff.processes import MaskedDiffusion
from seqdiff.samplers import OrderedSampler

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on a shared CPU

PAIRS = [("the fox", "THE FOX"), ("a dog", "A DOG!"), ("lazy", "LAZY"), ("over the dog", "OVER THE DOG")] * 10


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def data(tmp_path):
    f = write(tmp_path / "p.jsonl", [{"src": s, "tgt": t} for s, t in PAIRS])
    return PairData(TextDomain("byte", bos=True, eos=True), str(f), seq_len=32, split_fractions=[1, 0, 0])


def test_rows_fix_bos_source_and_separator(data):
    x, valid, fixed = data.rows["train"]
    dom = data.domain
    row = x[0][valid[0]].tolist()
    assert row == [dom.bos_id, *dom.encode("the fox"), dom.eos_id, *dom.encode("THE FOX"), dom.eos_id]
    assert fixed[0].sum() == 1 + 7 + 1 and fixed[0, :9].all()
    assert data.num_tokens("train") == sum(len(t) + 1 for _, t in PAIRS)
    # the sampling layout is the training one: same fixed prefix, target region free
    c = data.source_condition(["the fox"], 2, target_length=7)
    assert torch.equal(c.tokens[0, :9], x[0, :9]) and torch.equal(c.fixed[0, :16], fixed[0, :16])
    assert c.valid.sum(1).tolist() == [17, 17]  # 9 fixed + 7 target + [EOS]
    assert c.fixed[:, 16].all() and (c.tokens[:, 16] == dom.eos_id).all()  # the closing [EOS], as in the data


class Recorder(Backbone):
    """Uniform logits; records which positions were masked and which were scored."""

    def __init__(self, V):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(V))
        self.seen = []

    def features(self, x_t, t, valid):
        return torch.zeros(*x_t.shape, 1)

    def head(self, h):
        return self.w.expand(*h.shape[:-1], -1)

    def forward(self, x_t, t=None, valid=None, output_mask=None):
        self.seen.append((x_t.clone(), None if output_mask is None else output_mask.clone()))
        return super().forward(x_t, t, valid, output_mask=output_mask)


@pytest.mark.parametrize("corruption", ["uniform", "ens"])
def test_loss_never_masks_or_scores_the_source(data, corruption):
    x, valid, fixed = data.train_batch(0, 16)
    proc = MaskedDiffusion(data.domain.vocab, corruption=corruption, estimator="count")
    net = Recorder(data.domain.vocab.size)
    out = proc.loss(net, x, valid, fixed=fixed, generator=torch.Generator().manual_seed(0))
    assert out.num_tokens.tolist() == (valid & ~fixed).sum(1).tolist()
    x_t, scored = net.seen[-1]  # the loss call (ENS first runs its entropy passes)
    masked = x_t == data.domain.vocab.mask_id
    assert torch.equal(x_t[fixed], x[fixed]) and not (masked & ~(valid & ~fixed)).any()
    assert torch.equal(scored, masked) and masked.any()
    # uniform logits: every masked target costs log(#generatable ids), so the loss is exact
    n_gen = data.domain.vocab.num_generatable
    ce = masked.sum(1).double() * torch.log(torch.tensor(float(n_gen)))
    assert torch.allclose(out.nelbo / ce, (valid & ~fixed).sum(1) / masked.sum(1).double())


def test_sampling_keeps_the_source(data):
    c = data.source_condition(["a dog", "lazy"], 3, target_length=5)
    V = data.domain.vocab

    def den(x, rate, valid, positions):
        return torch.log_softmax(torch.zeros(int(positions.sum()), V.size).masked_fill(V.forbidden_mask(), -torch.inf), -1)

    out = OrderedSampler(V, num_steps=3).sample(den, 6, 32, c, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out.tokens[c.fixed], c.tokens[c.fixed])
    assert data.decode_target(c.tokens[0].masked_fill(~c.fixed[0], V.pad_id)) == ""
    assert (out.tokens[~c.valid] == V.pad_id).all() and not (out.tokens[c.valid] == V.mask_id).any()


@pytest.mark.parametrize("line,match", [
    ('{"src": "a", "tgt": "b"', r"p\.jsonl:2: not valid JSON"),
    ('{"src": "a"}', r"p\.jsonl:2: no field 'tgt'"),
    ('{"src": 3, "tgt": "b"}', r"p\.jsonl:2: field 'src' is int"),
    ('{"src": "a", "tgt": "  "}', r"p\.jsonl:2: empty target"),
    ('["a", "b"]', r"p\.jsonl:2: expected a JSON object"),
])
def test_bad_lines_name_file_and_line(tmp_path, line, match):
    f = tmp_path / "p.jsonl"
    f.write_text('{"src": "x", "tgt": "y"}\n' + line + "\n")
    d = PairData(TextDomain("byte", bos=True, eos=True), str(f), seq_len=32)
    with pytest.raises(DataError, match=match):
        d.train_batch(0, 2)


def test_overflow_error_names_the_line_and_truncate_counts(tmp_path):
    f = write(tmp_path / "p.jsonl", [{"src": "x", "tgt": "y"}, {"src": "s" * 10, "tgt": "t" * 30}])
    dom = TextDomain("byte", bos=True, eos=True)
    with pytest.raises(DataError, match=r"p\.jsonl:2: 10 source \+ 30 target tokens do not fit"):
        PairData(dom, str(f), seq_len=24, overflow="error").rows
    d = PairData(dom, str(f), seq_len=24, split_fractions=[1, 0, 0])
    x, valid, fixed = d.rows["train"]
    assert d.truncated["train"] == 1 and valid[1].all() and fixed[1].sum() == 12  # [BOS] + 10 + [EOS]
