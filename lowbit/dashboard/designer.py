"""The format designer's inputs, checked at the edge, and the designed format's accuracy and cost.

Inputs come from the page (or from anyone who can post to it), so each is validated and a bad one
raises ValueError naming the field: the element (a format name), the block (an integer from 0, for
none, to DESIGN_BLOCK_MAX), the scale (one of SCALES) and the rule (a ScaleRule)."""

from __future__ import annotations

import math
import re

import numpy as np

from ..formats import AnyFormat, ScaledFormat, ScaleRule, get_format, parse_enum
from ..simulator import quantize
from ..study.metrics import TensorCase
from ..study.schema import Cost
from ..study.store import BITS_PER_ELEMENT, WorkloadKind, cost_column, engine_unit_columns, metric_of, storage_bits

SCALES = ["e8m0", "e4m3", "ue5m3", "fp16", "bf16", "fp32"]  # the designer's scale formats (fp32: exact)
DESIGN_BLOCK_MAX = 4096  # the designer's largest block (elements); 0 means no block scale
NAME_MAX = 64  # characters of an element name (longer input is refused, never echoed)
_DIGITS = re.compile(r"[0-9]{1,10}")  # a block typed as text: ASCII digits only (no '1.5', '2e6', '-3')
_BLOCK_SUFFIX = re.compile(r"_b([0-9]+)$", re.IGNORECASE)  # block codebooks (af4_b64, bof4s_b256, ...) name their block


def _shown(value: object) -> str:
    """A short repr of user input for a message (never the whole of a long string)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_block(value: object) -> int:
    """The designer's block: an integer from 0 (no block scale) to DESIGN_BLOCK_MAX. Accepts what a
    number box sends (an int, or a float with no fraction) and decimal digits; refuses the rest
    ('1.5', '2e6', -3, 'abc', True)."""
    block = None
    whole = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if whole or (isinstance(value, float) and value.is_integer()):
        block = int(value)
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        block = int(value.strip())
    if block is None or not 0 <= block <= DESIGN_BLOCK_MAX:
        raise ValueError(f"block: must be an integer from 0 (none) to {DESIGN_BLOCK_MAX}, got {_shown(value)}")
    return block


def parse_element(value: object) -> AnyFormat:
    """The designer's element: a format name (eXmY, intN or a catalog name) of at most NAME_MAX
    characters; a block codebook's block (af4_bN) is held to DESIGN_BLOCK_MAX as the block is."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"element: enter a format name (eXmY, intN or a catalog name), got {_shown(value)}")
    name = value.strip()
    if len(name) > NAME_MAX:
        raise ValueError(f"element: a name has at most {NAME_MAX} characters, got {len(name)}")
    suffix = _BLOCK_SUFFIX.search(name)
    if suffix and int(suffix.group(1)) > DESIGN_BLOCK_MAX:
        raise ValueError(f"element: {name!r} has a block above the designer's {DESIGN_BLOCK_MAX}")
    try:
        return get_format(name)
    except (ValueError, TypeError) as err:
        raise ValueError(f"element: {str(err).removeprefix('format: ')}") from None


def parse_scale(value: object) -> AnyFormat | None:
    """The designer's scale format: one of SCALES (None or 'fp32': an exact float32 scale)."""
    if value is None:
        return None
    if not isinstance(value, str) or value.strip().lower() not in SCALES:
        raise ValueError(f"scale: must be one of {', '.join(SCALES)}, got {_shown(value)}")
    name = value.strip().lower()
    return None if name == "fp32" else get_format(name)


def design_format(element, block, scale, rule) -> AnyFormat:
    """The designer's format: an element (eXmY, intN or any catalog name) with a block scale of
    `scale` picked by `rule` when block > 0; block 0 takes the named format as it is. ValueError
    naming the field for any bad input."""
    el = parse_element(element)
    n = parse_block(block)
    sc = parse_scale(scale)
    picked = ScaleRule.ABSMAX if rule is None else parse_enum(ScaleRule, rule, "rule")
    if not n:
        return el
    if isinstance(el, ScaledFormat):
        raise ValueError(f"element: {str(element).strip()!r} has its own scales; set block to 0 to take it as it is")
    return ScaledFormat(el, n, sc, picked)


def design_cost(fmt: AnyFormat, column: str, shape: tuple[int, int], cost: Cost) -> float:
    """A designed format's value in a cost column, computed as the study table computes it for data of
    `shape` (quantized along its last axis)."""
    col = cost_column(column)
    if col is None:
        return math.nan
    if col is BITS_PER_ELEMENT:
        return storage_bits(fmt, shape)
    if cost.engine is not None and col.name in (priced := engine_unit_columns(cost.engine_cost())):
        return priced[col.name]  # the engine's datapath is the unit, whatever the format
    return col.of_estimate(cost.estimate(fmt, shape[-1])) if col.of_estimate else math.nan


def design_accuracy(metric: str | None, x: np.ndarray, fmt: AnyFormat) -> float:
    """A tensor metric of the designed format `fmt` on `x`, rounded to nearest: a range diagnostic
    reads the format's diagnosis of x (lowbit.diagnose), the others compare x with its quantized
    copy; NaN for GEMM and model metrics (a tensor is not enough)."""
    m = metric_of(metric) if isinstance(metric, str) else None
    if m is None or WorkloadKind.TENSOR not in m.kinds:
        return math.nan
    if m.diagnostic:
        return m.compute(TensorCase(np.asarray(x, np.float32), fmt))
    return m.compute(np.asarray(x, np.float64), np.asarray(quantize(x, fmt), np.float64))
