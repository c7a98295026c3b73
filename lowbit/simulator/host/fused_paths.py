"""The fused row kernels beyond MX and absmax that `blocks.quantize_rows` tries, in order.

Each is `path(rows, fmt, rnd, out) -> Blocks | None`: the values (no codes) of float32 rows (one
block a row, C-contiguous) quantized to `fmt` in a fused kernel, written into `out` (rows' shape)
where it is given, or None where the path does not apply (then the next one, and last the
step-by-step pipeline, runs). A path equals the pipeline bit for bit, and its tests say so. Paths
must not import `blocks` (which imports this module).
"""

from __future__ import annotations

from collections.abc import Callable

from .fused_given import fused_given
from .fused_micro import fused_micro
from .fused_search import FUSED_SEARCH

FUSED_PATHS: tuple[Callable, ...] = (fused_given, fused_micro, *FUSED_SEARCH)
