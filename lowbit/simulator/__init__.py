"""Bit-exact emulation, in rooms whose imports point one way:

- `kernels`: the compiled layer (scalar functions written once, JIT options, CPU and CUDA
  drivers, the parameter vectors, and `dispatch`, which runs a named driver on a target);
- `host`: the API of every format family (quantize, encode, decode), input checks, scale rules,
  the block pipeline, packing, the Hadamard transform, and range diagnostics (diagnose, compare);
- `gemm`: dot-product and GEMM emulation;
- `matrix_engines`: `mma`, one tensor-core or matrix-core instruction, bit-exact (MMA-Sim's algorithms);
- `reference`: the slow, obvious oracle the kernels are tested against.
"""

from .gemm import Factors, MatmulError, Order, dot, matmul, matmul_error, operand
from .host.codec import Encoded, bits_per_element, decode, encode, quantize
from .host.diagnose import BlockDiagnosis, Comparison, Diagnosis, compare, diagnose
from .host.packing import BitOrder, pack_codes, unpack_codes
from .host.transforms import hadamard
from .kernels.dispatch import Target
from .kernels.params import NanPolicy
from .kernels.rounding import Rounding
from .matrix_engines import engines, mma

__all__ = [
    "BitOrder",
    "BlockDiagnosis",
    "Comparison",
    "Diagnosis",
    "Encoded",
    "Factors",
    "MatmulError",
    "Order",
    "NanPolicy",
    "Rounding",
    "Target",
    "bits_per_element",
    "compare",
    "decode",
    "diagnose",
    "dot",
    "encode",
    "engines",
    "hadamard",
    "matmul",
    "matmul_error",
    "mma",
    "operand",
    "pack_codes",
    "quantize",
    "unpack_codes",
]
