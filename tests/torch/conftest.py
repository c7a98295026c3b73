"""The torch tests need the `torch` extra. Without torch each test module here is replaced by one
item that skips, except under CI=true, where that item fails: CI installs the extra (.ci/run), so
a missing torch there is a broken set-up, not an optional feature.

The modules are replaced before they are imported, so they may `import torch` at the top."""

from __future__ import annotations

import os

import pytest

INSTALL = "install lowbit[torch] (.ci/run does; where there is no GPU, the CPU build torch==2.13.0+cpu)"


def _torch_import_error() -> Exception | None:
    """Why torch cannot be imported, or None when it can (OSError: a build whose libraries fail to load)."""
    try:
        import torch  # noqa: F401
    except (ImportError, OSError) as err:
        return err
    return None


class _TorchMissing(pytest.Item):
    """Stands in for a test module when torch is missing: skips, or fails under CI=true."""

    def __init__(self, *, error: Exception, **kwargs) -> None:
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        if os.environ.get("CI") == "true":
            pytest.fail(
                f"CI=true but torch is missing, and the torch tests require it: {self.error}; {INSTALL}", pytrace=False
            )
        pytest.skip(f"torch is not installed ({self.error}); {INSTALL}")

    def reportinfo(self):
        return self.path, None, f"{self.path.name}: torch required"


class _ModuleWithoutTorch(pytest.File):
    def __init__(self, *, error: Exception, **kwargs) -> None:
        super().__init__(**kwargs)
        self.error = error

    def collect(self):
        yield _TorchMissing.from_parent(self, name="torch_required", error=self.error)


def pytest_pycollect_makemodule(module_path, parent):
    """Collect a stand-in instead of the module when torch cannot be imported (None: the usual module)."""
    error = _torch_import_error()
    if error is None:
        return None
    return _ModuleWithoutTorch.from_parent(parent, path=module_path, error=error)


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a module, then the caller's setting back: the products in these tests are
    small, and on a busy two-core machine torch's pool waits on itself (a 48-sentence MiniLM forward pass
    measured 0.2 s on one thread and 2 s on two)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
