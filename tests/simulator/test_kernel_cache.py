"""Cached kernels are stamped by every kernel source file, so that a change to any of them (a block
kernel inlines the element rounding of another file) invalidates them all."""

from pathlib import Path

import numba

from lowbit.simulator.kernels import cache, scalar
from lowbit.simulator.kernels.jit import cpu_parallel

KERNELS = Path(scalar.__file__).parent


def _locator(dispatcher):
    return dispatcher._cache._impl._locator


def test_stamp_changes_with_any_kernel_file(tmp_path):
    for f in KERNELS.glob("*.py"):
        (tmp_path / f.name).write_bytes(f.read_bytes())
    before = cache.files_stamp(tmp_path)
    assert before == cache.kernel_sources_stamp()  # the copy stamps as the package does
    for name in ("rounding.py", "modules.py"):
        target = tmp_path / name
        original = target.read_bytes()
        target.write_bytes(original + b"# one more line\n")
        assert cache.files_stamp(tmp_path) != before
        target.write_bytes(original)
    assert cache.files_stamp(tmp_path) == before
    (tmp_path / "new_kernels.py").write_text("X = 1\n")
    assert cache.files_stamp(tmp_path) != before


def test_lowbit_kernels_get_the_combined_stamp():
    locator = _locator(cpu_parallel(scalar.draw_loop))
    assert isinstance(locator, cache._KernelFilesStamp)
    assert locator.get_source_stamp() == cache.kernel_sources_stamp()


def test_other_functions_keep_numbas_stamp():
    cpu_parallel(scalar.draw_loop)  # registers the locators, as every driver build does
    locator = _locator(numba.njit(cache=True)(_plain))
    assert not isinstance(locator, cache._KernelFilesStamp)
    assert locator.get_source_stamp() != cache.kernel_sources_stamp()


def _plain(x):
    return x + 1
