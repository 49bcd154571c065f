"""Numerical kernels in pure PyTorch (CUDA kernels are used by the backbones when present)."""

from seqdiff.ops.reference import selective_scan_ref
from seqdiff.ops.selective_scan import cpu_threads, default_chunk_size, selective_scan_fn, selective_state_update

__all__ = [
    "cpu_threads",
    "default_chunk_size",
    "selective_scan_fn",
    "selective_scan_ref",
    "selective_state_update",
]
