"""The fused path of shared micro-exponent formats (MX9, MX6, MX4): one pass over the rows in
`kernels.micro_scalar`, equal to the pipeline (`blocks._finish_micro`) bit for bit."""

from __future__ import annotations

import numpy as np

from ...formats import IntFormat, ScaledFormat, TensorScale
from ..kernels.dispatch import Out, run
from ..kernels.rounding import Rounding
from .rows import Blocks, ElementRounding
from .statistics import pow2_element_args


def _micro_args(fmt: ScaledFormat, mode: Rounding) -> tuple | None:
    """The kernel's format arguments, or None where it does not apply: no micro-exponents, a rule
    without a power-of-two scale, a tensor scale, a rounding other than nearest, or an element
    off the vectorised float32 path."""
    if not isinstance(fmt, ScaledFormat) or fmt.micro is None or mode is not Rounding.RNE:
        return None
    if not isinstance(fmt.element, IntFormat):  # ScaledFormat allows symmetric integers only
        return None
    if fmt.tensor_scale is not TensorScale.NONE:
        return None
    args = pow2_element_args(fmt)
    if args is None:
        return None
    *pow2, f = args
    return (*pow2, fmt.micro.block, fmt.micro.max_shift, f)


def fused_micro(
    rows: np.ndarray, fmt: ScaledFormat, rnd: ElementRounding, out: np.ndarray | None = None
) -> Blocks | None:
    """Values and scales of float32 rows (one block each) quantized to a micro-exponent format in
    one fused kernel, written into `out` where given; None where the kernel does not apply (see
    `_micro_args`). The sub-block shifts are not returned: values need none (encode, which
    stores them, runs the pipeline)."""
    args = _micro_args(fmt, rnd.mode)
    if args is None or rows.shape[1] == 0:
        return None
    out = np.empty_like(rows) if out is None else out
    scales = np.empty(rows.shape[0], np.float32)
    run("micro", rnd.target, rows.shape[0], rows, rows.view(np.int32), *args, Out(out), Out(scales))
    return Blocks(out, None, scales[:, None], None)
