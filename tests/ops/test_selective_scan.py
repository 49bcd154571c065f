"""The PyTorch selective scan against a float64 double loop, mamba-ssm's semantics.

Inputs follow mamba-ssm's own test recipe (A = -0.5 rand, delta = 0.5 rand,
delta_bias = 0.5 rand, randn u/B/C/z/D); fp32 tolerances are its kernel-vs-reference
ones (rtol 6e-4, atol 2e-3), float64 must agree to rounding.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

from seqdiff.ops import selective_scan_fn, selective_scan_ref, selective_state_update

RTOL, ATOL = 6e-4, 2e-3


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: tiny shapes, one intra-op thread


def make(b=2, d=4, n=8, L=64, groups=None, dtype=torch.float64, seed=0, grad=False):
    g = torch.Generator().manual_seed(seed)
    bc = (b, n, L) if groups is None else (b, groups, n, L)
    t = {
        "u": torch.randn(b, d, L, generator=g, dtype=dtype),
        "delta": 0.5 * torch.rand(b, d, L, generator=g, dtype=dtype),
        "A": -0.5 * torch.rand(d, n, generator=g, dtype=dtype),
        "B": torch.randn(*bc, generator=g, dtype=dtype),
        "C": torch.randn(*bc, generator=g, dtype=dtype),
        "D": torch.randn(d, generator=g, dtype=dtype),
        "z": torch.randn(b, d, L, generator=g, dtype=dtype),
        "delta_bias": 0.5 * torch.rand(d, generator=g, dtype=dtype),
    }
    return {k: v.requires_grad_(grad) for k, v in t.items()}


OPTIONS = [
    dict(D=True, z=True, delta_bias=True, delta_softplus=True),
    dict(D=False, z=False, delta_bias=False, delta_softplus=False),
    dict(D=True, z=False, delta_bias=True, delta_softplus=False),
    dict(D=False, z=True, delta_bias=False, delta_softplus=True),
]


def call(fn, t, opts, **kw):
    return fn(
        t["u"], t["delta"], t["A"], t["B"], t["C"],
        D=t["D"] if opts["D"] else None,
        z=t["z"] if opts["z"] else None,
        delta_bias=t["delta_bias"] if opts["delta_bias"] else None,
        delta_softplus=opts["delta_softplus"],
        return_last_state=True,
        **kw,
    )


@pytest.mark.parametrize("L", [1, 3, 128, 1000])
@pytest.mark.parametrize("opts", OPTIONS)
def test_forward_and_last_state_match_reference_fp32(L, opts):
    t = make(L=L)
    ref, ref_last = call(selective_scan_ref, t, opts)
    t32 = {k: v.float() for k, v in t.items()}
    out, last = call(selective_scan_fn, t32, opts)
    assert out.dtype == torch.float32 and out.shape == (2, 4, L) and last.shape == (2, 4, 8)
    torch.testing.assert_close(out.double(), ref, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(last.double(), ref_last, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("groups", [None, 1, 2])
@pytest.mark.parametrize("chunk", [1, 2, 5, 16, None, 37])
def test_float64_is_exact_for_any_chunk_size(groups, chunk):
    t = make(L=37, groups=groups)
    ref, ref_last = call(selective_scan_ref, t, OPTIONS[0])
    out, last = call(selective_scan_fn, t, OPTIONS[0], chunk_size=chunk)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(last, ref_last, rtol=1e-10, atol=1e-10)


def test_chunk_size_invariance_fp32():
    t = {k: v.float() for k, v in make(b=3, d=8, n=16, L=300).items()}
    outs = [call(selective_scan_fn, t, OPTIONS[0], chunk_size=c) for c in (1, 7, 32, 300)]
    for out, last in outs[1:]:
        torch.testing.assert_close(out, outs[0][0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(last, outs[0][1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("chunk", [1, 3, 4, None])
@pytest.mark.parametrize("groups", [None, 2])
def test_gradcheck_float64(chunk, groups):
    t = make(b=2, d=4, n=3, L=7, groups=groups, grad=True)
    names = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias"]

    def f(*args):
        kw = dict(zip(names, args))
        out, last = call(selective_scan_fn, kw, OPTIONS[0], chunk_size=chunk)
        return out, last  # both outputs carry gradient

    assert torch.autograd.gradcheck(f, [t[k] for k in names])


def test_gradients_match_reference_autograd_fp32():
    t = make(b=2, d=4, n=8, L=200, grad=True)
    names = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias"]
    ref, ref_last = call(selective_scan_ref, t, OPTIONS[0])
    g = torch.Generator().manual_seed(1)
    dy, dl = torch.randn(ref.shape, generator=g, dtype=torch.float64), torch.randn(ref_last.shape, generator=g, dtype=torch.float64)
    ref_grads = torch.autograd.grad((ref * dy).sum() + (ref_last * dl).sum(), [t[k] for k in names])
    t32 = {k: v.detach().float().requires_grad_() for k, v in t.items()}
    out, last = call(selective_scan_fn, t32, OPTIONS[0])
    grads = torch.autograd.grad((out * dy.float()).sum() + (last * dl.float()).sum(), [t32[k] for k in names])
    for name, a, b in zip(names, grads, ref_grads):
        scale = b.abs().max().item()
        err = (a.double() - b).abs().max().item()
        assert err <= 1e-4 * max(scale, 1.0), f"d{name}: max error {err:.2e} (scale {scale:.2e})"


@pytest.mark.parametrize("delta_scale", [0.1, 30.0])
def test_s4d_real_stress_is_finite_and_accurate(delta_scale):
    """A = -(1..16), L = 1024: exp(cumsum) ratio tricks overflow here; ours must not."""
    g = torch.Generator().manual_seed(0)
    b, d, n, L = 2, 4, 16, 1024
    u, B, C = torch.randn(b, d, L, generator=g), torch.randn(b, n, L, generator=g), torch.randn(b, n, L, generator=g)
    delta = delta_scale * torch.rand(b, d, L, generator=g)
    A = -torch.arange(1, n + 1, dtype=torch.float32).repeat(d, 1)
    ins = [x.clone().requires_grad_() for x in (u, delta, A, B, C)]
    out, last = selective_scan_fn(*ins, return_last_state=True)
    (out.sum() + last.sum()).backward()
    assert torch.isfinite(out).all() and torch.isfinite(last).all()
    assert all(torch.isfinite(x.grad).all() for x in ins)
    ref, ref_last = selective_scan_ref(u, delta, A, B, C, return_last_state=True)
    torch.testing.assert_close(out.double(), ref, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(last.double(), ref_last, rtol=RTOL, atol=ATOL)


def test_low_precision_inputs_compute_in_fp32():
    t = make(L=50)
    ref, _ = call(selective_scan_ref, t, OPTIONS[0])
    out, last = call(selective_scan_fn, {k: v.bfloat16() for k, v in t.items()}, OPTIONS[0])
    assert out.dtype == torch.bfloat16 and last.dtype == torch.float32
    torch.testing.assert_close(out.double(), ref, rtol=3e-2, atol=5e-2)  # mamba-ssm's bf16 tolerance


def test_state_update_steps_match_the_scan():
    t = {k: v.float() for k, v in make(L=20, groups=2).items()}
    full, last = call(selective_scan_fn, t, OPTIONS[0])
    state = torch.zeros(2, 4, 8)
    for i in range(20):
        y = selective_state_update(
            state, t["u"][..., i], t["delta"][..., i], t["A"], t["B"][..., i], t["C"][..., i],
            t["D"], t["z"][..., i], t["delta_bias"], True,
        )
        torch.testing.assert_close(y, full[..., i], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(state, last, rtol=1e-5, atol=1e-5)


def test_shape_errors_are_clear():
    t = {k: v.float() for k, v in make(L=10).items()}
    with pytest.raises(ValueError, match="A must be"):
        selective_scan_fn(t["u"], t["delta"], t["A"][:2], t["B"], t["C"])
    with pytest.raises(ValueError, match="B must be"):
        selective_scan_fn(t["u"], t["delta"], t["A"], t["B"][..., :5], t["C"])
    with pytest.raises(NotImplementedError, match="time-invariant"):
        selective_scan_fn(t["u"], t["delta"], t["A"], t["A"], t["C"])


CUDA_KERNEL = torch.cuda.is_available() and importlib.util.find_spec("mamba_ssm") is not None


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA_KERNEL, reason="needs CUDA and mamba-ssm")
@pytest.mark.parametrize("dtype,rtol,atol", [(torch.float32, 6e-4, 2e-3), (torch.bfloat16, 3e-2, 5e-2)])
@pytest.mark.parametrize("groups", [None, 2])
def test_cuda_kernel_matches_pytorch_scan(dtype, rtol, atol, groups):
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn as kernel

    t = make(b=2, d=4, n=8, L=512, groups=groups, dtype=torch.float32)
    t = {k: v.cuda().to(dtype if k in ("u", "delta", "B", "C", "z") else torch.float32).requires_grad_() for k, v in t.items()}
    ours = {k: v.detach().clone().requires_grad_() for k, v in t.items()}
    out_k, last_k = call(kernel, t, OPTIONS[0])
    out_o, last_o = call(selective_scan_fn, ours, OPTIONS[0])
    torch.testing.assert_close(out_o, out_k, rtol=rtol, atol=atol)
    torch.testing.assert_close(last_o, last_k.float(), rtol=rtol, atol=atol)
    dy = torch.randn_like(out_k)
    (out_k * dy).sum().backward()
    (out_o * dy).sum().backward()
    rtolw, atolw = max(1e-3, rtol), max(1e-3, atol)
    tol = {"u": (2 * rtol, 2 * atol), "delta": (5 * rtol, 10 * atol), "A": (rtolw, 5 * atolw), "B": (rtol, atol), "C": (rtol, atol)}
    for name in ("u", "delta", "A", "B", "C", "D", "z", "delta_bias"):
        r, a = tol.get(name, (rtolw, atolw))
        torch.testing.assert_close(ours[name].grad, t[name].grad, rtol=r, atol=a, msg=lambda m: f"d{name}: {m}")


def test_empty_sequence():
    t = {k: v.float() for k, v in make(L=0).items()}
    out, last = call(selective_scan_fn, t, OPTIONS[0])
    assert out.shape == (2, 4, 0) and torch.equal(last, torch.zeros(2, 4, 8))
