import torch

from seqdiff.processes.time_sampling import order_statistic_mask, stratified_uniform


def test_stratified_uniform_covers_each_stratum_once():
    u = stratified_uniform(16, generator=torch.Generator().manual_seed(0))
    assert ((u > 0) & (u <= 1)).all()
    strata = torch.floor((1 - u) * 16).long()  # u = 1 - (i + U)/n
    assert sorted(strata.tolist()) == list(range(16))


def test_global_stratification_slices_compose():
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    full = stratified_uniform(12, generator=g())
    parts = torch.cat([stratified_uniform(4, generator=g(), offset=o, total=12) for o in (0, 4, 8)])
    assert torch.allclose(full, parts)


def test_stratified_is_marginally_uniform():
    draws = torch.cat([stratified_uniform(8, generator=torch.Generator().manual_seed(s)) for s in range(2000)])
    hist = torch.histc(draws.float(), bins=10, min=0, max=1)
    assert (hist - 1600).abs().max() < 150


def test_order_statistic_mask_masks_exactly_k_valid_positions():
    valid = torch.ones(6, 10, dtype=torch.bool)
    valid[3:, 7:] = False
    k = torch.tensor([0, 1, 5, 7, 3, 1])
    masked, rate = order_statistic_mask(valid, k, generator=torch.Generator().manual_seed(0))
    assert masked.sum(1).tolist() == k.tolist()
    assert not (masked & ~valid).any()


def test_order_statistic_rate_is_beta_distributed():
    # rate ~ Beta(k, n - k + 1): mean k / (n + 1)
    n, k = 10, 3
    valid = torch.ones(20000, n, dtype=torch.bool)
    _, rate = order_statistic_mask(valid, torch.full((20000,), k), generator=torch.Generator().manual_seed(1))
    assert abs(float(rate.mean()) - k / (n + 1)) < 0.005
