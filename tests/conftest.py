import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
# Shared helpers are imported as ``support.<module>`` (tests run with --import-mode=importlib,
# so test directories may repeat file names, as the package they mirror does).
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session", autouse=True)
def _cache_in_tmp(tmp_path_factory):
    """Index/validation caches go to a tmp dir, never to ~/.cache (session-wide, so
    module-scoped fixtures that train a run are covered too)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEQDIFF_CACHE_DIR", str(tmp_path_factory.mktemp("seqdiff-cache")))
        yield


@pytest.fixture
def one_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread avoids OpenMP spin-waits
    (measured 60x faster per step for a 30k-parameter BERT when the CPU is oversubscribed)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def corpus_file(tmp_path) -> Path:
    from support.textfiles import make_text

    p = tmp_path / "corpus.txt"
    p.write_text(make_text(300))
    return p


@pytest.fixture
def gpt2_dir(tmp_path) -> Path:
    from support.textfiles import write_tiny_gpt2

    return write_tiny_gpt2(tmp_path / "gpt2")


@pytest.fixture
def bert_dir(tmp_path) -> Path:
    from support.textfiles import write_tiny_bert

    return write_tiny_bert(tmp_path / "bert")
