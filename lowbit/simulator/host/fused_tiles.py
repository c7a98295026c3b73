"""2-D tiles of NVFP4 (nvfp4_2d: one E4M3 scale per 16 x 16 tile, under the tensor scale),
quantized in place in the moved array by the fused tile kernel (`kernels.tile_scalar`).

The pipeline gathers the tiles into rows (`blocks.Layout._tiles`), quantizes the rows and scatters
them back (`Layout._untile`): two copies of the array around the kernel. The tile kernel reads and
writes each tile where it lies in the input with its block axis moved last, so an input whose
block axis is already last (C-contiguous) is read and written without any copy. It equals the
pipeline (`Layout` rows, then `blocks._quantize_rows`) bit for bit, values and tile scales (tested).
"""

from __future__ import annotations

import numpy as np

from ...formats import DoubleQuant, FloatFormat, ScaledFormat, ScaleRule, TensorScale
from ..kernels.dispatch import Out, Target, run
from ..kernels.params import fast_params
from ..kernels.rounding import Rounding
from .blocks import Layout
from .elements import saturating
from .scales import nvfp4_scale_from_amax
from .statistics import finite_amax

F32 = np.float32


def tile_params(fmt: ScaledFormat, mode: Rounding) -> tuple[np.ndarray, np.ndarray] | None:
    """(element, scale) fast-path parameter vectors of the tile kernel, or None where it does not
    compute `fmt`: NVFP4's two levels (tensor scale, absmax block scales in a scale format on the
    fast path), float elements on the fast path (step 1), round to nearest even."""
    if fmt.block_rows <= 1 or fmt.tensor_scale is not TensorScale.NVFP4 or fmt.rule is not ScaleRule.ABSMAX:
        return None
    if mode is not Rounding.RNE or fmt.asymmetric or fmt.scale is None or isinstance(fmt.scale, DoubleQuant):
        return None
    if not isinstance(fmt.element, FloatFormat) or not isinstance(fmt.scale, FloatFormat):
        return None
    f = fast_params(saturating(fmt.element), False)
    fs = fast_params(saturating(fmt.scale), False)
    return None if f is None or fs is None else (f, fs)


def quantize_tiles(
    arr: np.ndarray, lay: Layout, fmt: ScaledFormat, mode: Rounding, target: Target, out: np.ndarray | None = None
) -> np.ndarray | None:
    """Values of float32 `arr` quantized to a 2-D tile format (`lay`: its layout), in arr's shape,
    or None where the tile kernel does not apply (see `tile_params`; 1-D blocks, tile_rows 1; then
    the caller runs the pipeline). `out` (arr's shape, C-contiguous, not overlapping arr, or None)
    receives the values directly when the block axis is arr's last; otherwise they come back in a
    new array."""
    done = fused_tiles(arr, lay, fmt, mode, target, out)
    return None if done is None else done[0]


def fused_tiles(
    arr: np.ndarray, lay: Layout, fmt: ScaledFormat, mode: Rounding, target: Target, out: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """(values in arr's shape, tile scales dec_b in `lay.blocks_shape`) of `quantize_tiles`, or None."""
    params = tile_params(fmt, mode) if lay.tile_rows > 1 and not lay.per_tensor else None
    if params is None or arr.size == 0:
        return None
    last = lay.axis == arr.ndim - 1
    moved = np.ascontiguousarray(arr if last else np.moveaxis(arr, lay.axis, -1))
    rows, cols = moved.shape[-2:]
    x = moved.reshape(-1, cols)
    direct = out is not None and moved is arr  # the block axis is last and arr C-contiguous
    values = out.reshape(x.shape) if direct else np.empty_like(x)
    scales = np.empty(lay.blocks_shape, np.float32)
    s_enc = nvfp4_scale_from_amax(finite_amax(moved, target), fmt)
    f, fs = params
    args = (rows, lay.tile_rows, lay.block, F32(fmt.element_max), F32(s_enc), f, fs)
    run("nv_tiles", target, scales.size, x, x.view(np.int32), *args, Out(values), Out(scales.reshape(-1)))
    result = values.reshape(moved.shape)
    return (result if last else np.moveaxis(result, -1, lay.axis)), scales
