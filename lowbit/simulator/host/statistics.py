"""Statistics of a tensor that several block paths take before their scales: the largest finite
|x| (NVFP4's tensor amax) and each row's mean |x| (absmean scales), each one kernel pass, and the
element arguments of the power-of-two block kernels. The step-by-step pipeline (`blocks`) and the
fused paths share them, so both compute the same numbers the same way."""

from __future__ import annotations

import numpy as np

from ...formats import ScaledFormat, ScaleRule
from ..kernels.dispatch import Out, Target, run
from ..kernels.params import fast_params
from ..kernels.scalar import RULE_CEIL, RULE_EVEN, RULE_FLOOR, RULE_RCEIL
from .elements import saturating

F32 = np.float32
# Elements per row of the amax and |x|-sum passes: long rows, since a loop per short block costs
# more than the pass itself.
PASS_ROW = 4096
POW2_RULES = {
    ScaleRule.OCP_FLOOR: RULE_FLOOR,
    ScaleRule.CEIL: RULE_CEIL,
    ScaleRule.EVEN: RULE_EVEN,
    ScaleRule.RCEIL: RULE_RCEIL,
}


def finite_amax(x: np.ndarray, target: Target) -> F32:
    """Largest finite |x| of the array (0 for none): the kernel's row maxima over rows of
    PASS_ROW elements (and one row for the rest), the largest taken on the host. A C-contiguous
    array is read in place; any other is copied once, so the kernel sees one layout."""
    flat = np.ascontiguousarray(x).reshape(-1)
    head = flat.size - flat.size % PASS_ROW
    best = 0
    for part in (flat[:head].reshape(-1, PASS_ROW), flat[head:].reshape(1, -1)):
        if part.size:
            bits = np.zeros(part.shape[0], np.int64)
            run("finite_amax", target, part.shape[0], part.view(np.int32), Out(bits))
            best = max(best, int(bits.max()))
    return np.array([best], np.int64).astype(np.int32).view(np.float32)[0]


def abs_mean(rows: np.ndarray) -> np.ndarray:
    """mean(|x|) of each row as float32: float64 sums over pieces of PASS_ROW elements (a kernel
    pass, see `abs_sum_loop` for the order), the pieces summed in order on the host, divided, then
    rounded once."""
    n = rows.shape[1]
    if n == 0 or rows.shape[0] == 0:
        return np.zeros(rows.shape[0], np.float32)
    size = PASS_ROW if n % PASS_ROW == 0 else n
    pieces = rows.reshape(-1, size)
    sums = np.empty(pieces.shape[0], np.float64)
    run("abs_sum", Target.CPU, pieces.shape[0], pieces, sums)
    # In order (accumulate adds left to right), so the result does not depend on NumPy's pairwise sum.
    total = np.add.accumulate(sums.reshape(rows.shape[0], -1), axis=1)[:, -1]
    return (total / n).astype(np.float32)


def pow2_element_args(fmt: ScaledFormat) -> tuple | None:
    """(rule code, element emax, mantissa bits, max, step, fast parameter vector) of a format with
    a power-of-two scale rule and an element on the vectorised float32 path, or None."""
    if fmt.rule not in POW2_RULES:
        return None
    f = fast_params(saturating(fmt.element), False)
    if f is None:
        return None
    return (
        POW2_RULES[fmt.rule],
        fmt.element_emax,
        fmt.element_mantissa_bits,
        F32(fmt.element_max),
        F32(fmt.element_step),
        f,
    )
