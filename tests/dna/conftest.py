import pytest


@pytest.fixture(scope="session", autouse=True)
def _cache_in_tmp(tmp_path_factory):
    """Index/validation caches go to a tmp dir, never to ~/.cache (session-wide, so
    module-scoped fixtures that train a run are covered too)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEQDIFF_CACHE_DIR", str(tmp_path_factory.mktemp("seqdiff-cache")))
        yield
