"""Bit-exact emulation: Numba kernels (one source, CPU and CUDA), packing, and the reference oracle."""

from .elements import Encoded, Target, bits_per_element, decode, encode, quantize
from .gemm import MatmulError, Order, dot, matmul, matmul_error
from .packing import BitOrder, pack_codes, unpack_codes
from .params import NanPolicy
from .rounding import Rounding
from .transforms import hadamard

__all__ = [
    "BitOrder",
    "Encoded",
    "MatmulError",
    "Order",
    "NanPolicy",
    "Rounding",
    "Target",
    "bits_per_element",
    "decode",
    "dot",
    "encode",
    "hadamard",
    "matmul",
    "matmul_error",
    "pack_codes",
    "quantize",
    "unpack_codes",
]
