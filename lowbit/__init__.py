"""lowbit: bit-exact emulation, cost and design-space exploration of low-bit number formats."""

from . import costmodel, formats, simulator
from ._version import __version__
from .formats import FloatFormat, IntFormat, get_format
from .simulator import (
    Comparison,
    Diagnosis,
    Encoded,
    Rounding,
    bits_per_element,
    compare,
    decode,
    diagnose,
    encode,
    quantize,
)

__all__ = [
    "Comparison",
    "Diagnosis",
    "Encoded",
    "FloatFormat",
    "IntFormat",
    "Rounding",
    "__version__",
    "bits_per_element",
    "compare",
    "costmodel",
    "decode",
    "diagnose",
    "encode",
    "formats",
    "get_format",
    "quantize",
    "simulator",
]
