"""Numba's on-disk cache for lowbit's kernels, stamped by every kernel source file together.

Numba keys a cached function by the one source file it was written in, and reuses it while that
file is unchanged. lowbit's drivers inline scalar functions from the other kernel files of this
package (the block kernels call the element rounding of `scalar`, say), so a change to any kernel
file must invalidate every cached kernel: the locators here give lowbit's kernel functions, and
only them, a stamp that hashes all the kernel files. Where the cache lives is Numba's choice as
before (NUMBA_CACHE_DIR, else beside the source, else the user-wide directory).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from numba.core import caching

_DIR = Path(__file__).parent


def files_stamp(directory: Path) -> str:
    """SHA-256 over the names and contents of every Python file in `directory`, in name order."""
    h = hashlib.sha256()
    for path in sorted(directory.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@functools.cache
def kernel_sources_stamp() -> str:
    """The stamp of every kernel source file (read once per process)."""
    return files_stamp(_DIR)


class _KernelFilesStamp:
    """Locator mixin: applies to functions of this package only, stamped by all its files."""

    @classmethod
    def from_function(cls, py_func, py_file):
        if not (getattr(py_func, "__module__", None) or "").startswith(__package__ + "."):
            return None
        return super().from_function(py_func, py_file)

    def get_source_stamp(self) -> str:
        return kernel_sources_stamp()


class _UserProvided(_KernelFilesStamp, caching.UserProvidedCacheLocator):
    pass


class _InTree(_KernelFilesStamp, caching.InTreeCacheLocator):
    pass


class _UserWide(_KernelFilesStamp, caching.UserWideCacheLocator):
    pass


@functools.cache
def stamp_kernel_caches() -> None:
    """Put the locators ahead of Numba's own (once per process; the drivers' builders call it)."""
    caching.CacheImpl._locator_classes[:0] = [_UserProvided, _InTree, _UserWide]
