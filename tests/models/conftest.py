import os

import pytest

from lowbit.models import load_minilm


@pytest.fixture(scope="session")
def minilm():
    """The packaged model; a missing `models` extra skips, except under CI=true, where it fails."""
    try:
        return load_minilm()
    except ImportError as err:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the models extra is missing: {err}")
        pytest.skip(str(err))
