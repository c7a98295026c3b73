import pytest

from ..helpers import minilm_or_skip


@pytest.fixture(scope="session")
def minilm():
    """The packaged model; a missing `models` extra skips, except under CI=true, where it fails."""
    return minilm_or_skip()
