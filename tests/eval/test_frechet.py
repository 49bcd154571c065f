"""Fréchet distance against closed forms for Gaussians, and the report beside its floor."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seqdiff.eval.frechet import ModelFeatures, frechet_distance, frechet_from_features, frechet_report, sqrtm_psd
from seqdiff.eval.judge import SeqdiffJudge
from seqdiff.run import build_run

pytestmark = pytest.mark.usefixtures("one_thread")


def test_diagonal_gaussians_closed_form():
    # diagonal covariances commute: d^2 = |mu1 - mu2|^2 + sum_i (s1_i - s2_i)^2 (standard deviations s)
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    s1, s2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 0.1, 0.5])
    want = float(((mu1 - mu2) ** 2).sum() + ((s1 - s2) ** 2).sum())
    assert frechet_distance(mu1, np.diag(s1**2), mu2, np.diag(s2**2)) == pytest.approx(want, rel=1e-12)


def test_two_by_two_non_commuting_closed_form():
    # for a 2x2 PSD M: tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)); with M = S1^1/2 S2 S1^1/2,
    # tr M = tr(S1 S2) and det M = det S1 det S2
    s1 = np.array([[2.0, 0.7], [0.7, 1.0]])
    s2 = np.array([[0.5, -0.3], [-0.3, 1.5]])
    assert not np.allclose(s1 @ s2, s2 @ s1)
    cross = math.sqrt(np.trace(s1 @ s2) + 2 * math.sqrt(np.linalg.det(s1) * np.linalg.det(s2)))
    mu1, mu2 = np.array([0.3, -1.0]), np.array([0.0, 0.0])
    want = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * cross)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(want, rel=1e-12)
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(want, rel=1e-12)  # symmetric


def test_sqrtm_and_rank_deficient_covariances():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 3))
    s = a @ a.T  # rank 3 of 5
    r = sqrtm_psd(s)
    assert np.allclose(r @ r, s, atol=1e-10)
    f = rng.normal(size=(10, 32))  # fewer rows than features: singular covariances
    assert frechet_from_features(f, f) == pytest.approx(0.0, abs=1e-9)
    g = rng.normal(size=(10, 32)) + 1.0
    assert math.isfinite(frechet_from_features(f, g)) and frechet_from_features(f, g) > 0


def test_features_of_gaussians_estimate_the_closed_form():
    rng = np.random.default_rng(1)
    n, s1, s2 = 200_000, np.array([1.0, 0.5]), np.array([2.0, 0.5])
    a = rng.normal(size=(n, 2)) * s1
    b = rng.normal(size=(n, 2)) * s2 + np.array([1.0, 0.0])
    assert frechet_from_features(torch.from_numpy(a), b) == pytest.approx(1.0 + 1.0, rel=0.02)


def _dna_run(process: str, causal: bool):
    return build_run({
        "seed": 0,
        "domain": {"_target_": "seqdiff_recipes.dna.DNADomain"},
        "data": {"seq_len": 32},
        "backbone": {"_target_": "seqdiff.backbones.DiT", "d_model": 16, "n_layers": 1, "n_heads": 2, "causal": causal},
        "process": {"_target_": process},
    })


@pytest.mark.parametrize("kind", ["judge", "model"])
def test_report_sits_beside_its_real_vs_real_floor(kind):
    if kind == "judge":
        exp = _dna_run("seqdiff.processes.AutoregressiveProcess", True)
        fx = SeqdiffJudge(exp)
    else:
        exp = _dna_run("seqdiff.processes.MaskedDiffusion", False)
        fx = ModelFeatures(exp)
    dom = exp.domain
    gen = torch.Generator().manual_seed(0)
    real = torch.randint(0, 4, (96, 32), generator=gen)  # A/C/G/T ids 0..3
    real_a, real_b = real[:48], real[48:]
    same = fx.features([r.tolist() for r in real_b[:4]])
    assert same.shape == (4, 16)
    r = frechet_report(fx, real_b.clone(), real_a, real_b, dom)
    assert r["frechet_distance"] == pytest.approx(0.0, abs=1e-6)  # the samples are set b itself
    assert r["frechet_floor"] > 0 and r["frechet_n"] == 48 and r["frechet_feature_dim"] == 16
    poly_a = torch.zeros(40, 32, dtype=torch.long)
    poly_a[:, ::5] = torch.randint(0, 4, (40, 7), generator=gen)  # mostly A: far from the real windows
    r = frechet_report(fx, poly_a, real_a, real_b, dom)
    assert r["frechet_n"] == 40  # every set cut to the smallest
    assert r["frechet_distance"] > 3 * r["frechet_floor"]
    assert r["frechet_over_floor"] == pytest.approx(r["frechet_distance"] / r["frechet_floor"])
