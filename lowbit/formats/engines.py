"""Matrix engines as data: the arithmetic of one tensor-core or matrix-core instruction.

Source: P. Xie, Y. Wang, F. Yang, M. Yang, "MMA-Sim: Bit-Accurate Reference Model of Tensor Cores
and Matrix Cores", arXiv 2511.10909 (2025), which derives the algorithms from tests on the
hardware; the per-instruction parameters (fraction bits, fused-sum length, the exponent a zero
term aligns to) are those of the authors' model, mmasim 2.1.1. A profile names one algorithm and
its parameters; `lowbit.simulator.mma` runs it.

The algorithms (`Algorithm`):
- T_FDPA (NVIDIA): the products of up to `group_size` element pairs and C are aligned to the
  largest exponent among them, each truncated toward zero `fraction_bits` below it, summed exactly
  and normalized to the output (RZ to float32, RZ to 13 fraction bits for FP8 on Ada and Hopper,
  RNE to float16). K longer than the group runs as `split_k` fused sums in sequence.
- ST_FDPA: T_FDPA whose product exponents also carry the two power-of-two block scales.
- GST_FDPA: `subgroup` products summed exactly, each sum times its two block scales, then fused
  with C as in T_FDPA (block-scaled FP4, k = 64).
- TR_FDPA (AMD CDNA3): the products are fused as in T_FDPA; with C the sum is rounded down
  (toward -inf) to `second_fraction_bits` + 1 bits and C to `fraction_bits` bits below the larger
  exponent, the total rounded down to `second_fraction_bits` bits, then RNE to float32.
- GTR_FDPA (CDNA3 FP8): TR_FDPA with the even and odd products fused apart, then added after
  rounding down.
- E_FDPA (CDNA1): the products and C summed exactly, rounded once to float32 (RNE).
- FTZ_MUL_ADD (CDNA2): float32 products and adds (RNE), pairs or quads of products added as a tree
  and then to C, every subnormal input, product and sum flushed to zero.
- FMA: a chain of IEEE fused multiply-adds over K (float32 and float64 instructions).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from .enums import parse_enum
from .names import get_format

CITATION = "Xie, Wang, Yang, Yang, MMA-Sim, arXiv 2511.10909 (2025)"
_NV_SOURCE = "parameters of the authors' model mmasim 2.1.1, nv_ptx/sim.py"
_AMD_SOURCE = "parameters of the authors' model mmasim 2.1.1, amd/sim.py"


class Arch(enum.Enum):
    VOLTA = "volta"
    TURING = "turing"
    AMPERE = "ampere"
    ADA = "ada"
    HOPPER = "hopper"
    BLACKWELL = "blackwell"
    RTX_BLACKWELL = "rtx_blackwell"
    CDNA1 = "cdna1"
    CDNA2 = "cdna2"
    CDNA3 = "cdna3"


class Algorithm(enum.Enum):
    T_FDPA = "t_fdpa"
    ST_FDPA = "st_fdpa"
    GST_FDPA = "gst_fdpa"
    TR_FDPA = "tr_fdpa"
    GTR_FDPA = "gtr_fdpa"
    E_FDPA = "e_fdpa"
    FTZ_MUL_ADD = "ftz_mul_add"
    FMA = "fma"


class SumRounding(enum.Enum):
    """How the terms of a fused sum are cut: TRUNCATE toward zero at `fraction_bits` below the
    largest exponent; ROUND_DOWN as TRUNCATE for the products, then toward -inf (CDNA3); EXACT not
    at all; NEAREST IEEE round-to-nearest-even at every multiply and add."""

    TRUNCATE = "truncate"
    ROUND_DOWN = "round_down"
    EXACT = "exact"
    NEAREST = "nearest"


class Normalization(enum.Enum):
    """How each fused sum becomes the output (or the next group's C)."""

    RZ_FP32 = "rz_fp32"
    RZ_E8M13 = "rz_e8m13"  # toward zero to 13 fraction bits, in a float32
    RNE_FP16 = "rne_fp16"
    RNE_FP32 = "rne_fp32"
    RNE_FP64 = "rne_fp64"


class Family(enum.Enum):
    MMA = "mma"
    WGMMA = "wgmma"
    TCGEN05 = "tcgen05"
    MFMA = "mfma"


@dataclass(frozen=True)
class OperandType:
    """A data type of a matrix instruction, as the vendor spells it (`name`), with its range.

    man_bits: fraction bits; emin: exponent of the lowest normal binade (subnormals share it);
    max_value: largest finite value; storage_bytes: bytes an element occupies in the register
    file (FP6 and FP4 take one byte each, as the instructions read them); fmt: lowbit's catalog
    name for the same format, where it has one; label: the name errors use.
    """

    name: str
    man_bits: int
    emin: int
    max_value: float
    has_inf: bool
    has_nan: bool
    storage_bytes: int
    unsigned: bool = False
    fmt: str | None = None
    label: str = ""


def _wide(name: str, man_bits: int, emin: int, emax: int, nbytes: int, label: str) -> OperandType:
    top = (2.0 - 2.0**-man_bits) * 2.0**emax
    return OperandType(name, man_bits, emin, top, True, True, nbytes, label=label)


def _lowbit(name: str, fmt: str, unsigned: bool = False) -> OperandType:
    spec = get_format(fmt)
    nbytes = 2 if spec.bits > 8 else 1
    label = f"unsigned {fmt}" if unsigned else fmt
    return OperandType(
        name, spec.man_bits, spec.emin, spec.max, spec.has_inf, spec.has_nan, nbytes, unsigned, fmt, label
    )


@functools.cache
def operand_types() -> Mapping[str, OperandType]:
    """Every operand and scale type, by its PTX or LLVM name (built on first use)."""
    types = [
        _wide("f64", 52, -1022, 1023, 8, "float64"),
        _wide("f32", 23, -126, 127, 4, "float32"),
        _wide("tf32", 10, -126, 127, 4, "tf32"),
        _wide("xf32", 10, -126, 127, 4, "xf32 (tf32)"),
        _lowbit("f16", "float16"),
        _lowbit("bf16", "bfloat16"),
        _lowbit("e4m3", "float8_e4m3fn"),
        _lowbit("e5m2", "float8_e5m2"),
        _lowbit("e3m2", "float6_e3m2fn"),
        _lowbit("e2m3", "float6_e2m3fn"),
        _lowbit("e2m1", "float4_e2m1fn"),
        # AMD CDNA3's FP8 types are the FNUZ variants (bias 8 and 16, one NaN, no Inf).
        _lowbit("fp8", "float8_e4m3fnuz"),
        _lowbit("bf8", "float8_e5m2fnuz"),
        _lowbit("ue8m0", "float8_e8m0fnu"),
        _lowbit("ue4m3", "float8_e4m3fn", unsigned=True),
    ]
    return MappingProxyType({t.name: t for t in types})


def operand_type(name: str) -> OperandType:
    types = operand_types()
    if name not in types:
        raise ValueError(f"instruction: unknown data type {name!r}; known: {', '.join(types)}")
    return types[name]


@dataclass(frozen=True)
class EngineProfile:
    """One instruction of one architecture and the arithmetic it performs (see the module doc).

    fraction_bits: bits kept below the largest exponent of a fused sum (None: exact, or IEEE
    rounding per operation); group_size: products fused in one sum (1 for an FMA chain); split_k:
    sums run one after another over K; subgroup: products summed before the fused sum (GST_FDPA:
    16 under one scale pair; GTR_FDPA: 2, the even and odd products; FTZ_MUL_ADD: the pair or
    quad tree); second_fraction_bits: CDNA3's second stage; zero_exponent: the exponent a zero
    product or a zero C is aligned as (it can set the largest exponent); block_size and
    scale_type: block-scaled kinds; nan_bits: the NaN the instruction writes (its bit pattern).
    """

    arch: Arch
    instruction: str
    m: int
    n: int
    k: int
    a_type: OperandType
    b_type: OperandType
    c_type: OperandType
    d_type: OperandType
    algorithm: Algorithm
    fraction_bits: int | None
    group_size: int
    split_k: int
    sum_rounding: SumRounding
    normalization: Normalization
    flush_denormals: bool = False
    subgroup: int | None = None
    second_fraction_bits: int | None = None
    zero_exponent: int | None = None
    block_size: int | None = None
    scale_type: OperandType | None = None
    nan_bits: int = 0x7FFFFFFF
    citation: str = CITATION

    @property
    def block_scaled(self) -> bool:
        return self.block_size is not None


class InstructionKey(NamedTuple):
    """An instruction name reduced to what selects its arithmetic (N is 8 where N is free)."""

    family: Family
    m: int
    n: int
    k: int
    kind: str | None
    block: int | None
    scale: str | None
    types: tuple[str, str, str, str]  # d, a, b, c
    one_k: bool = False


# ----- NVIDIA ----------------------------------------------------------------------------------
_NV_FRACTION_BITS = {
    Arch.VOLTA: 23,
    Arch.TURING: 24,
    Arch.AMPERE: 24,
    Arch.ADA: 24,
    Arch.HOPPER: 25,
    Arch.BLACKWELL: 25,
    Arch.RTX_BLACKWELL: 25,
}
# The fused sum of mma covers this many bytes of each A row: 4 f16 products on Volta, 8 on Turing
# to Ada, 16 on Hopper and Blackwell (twice as many FP8, half as many TF32).
_NV_GROUP_BYTES = {
    Arch.VOLTA: 8,
    Arch.TURING: 16,
    Arch.AMPERE: 16,
    Arch.ADA: 16,
    Arch.HOPPER: 32,
    Arch.BLACKWELL: 32,
    Arch.RTX_BLACKWELL: 32,
}
# Exponent of a zero term, by output type (fitted to the hardware by the MMA-Sim authors).
_NV_ZERO_EXPONENT = {
    "f16": {Arch.VOLTA: -19, Arch.TURING: -20, Arch.AMPERE: -20, Arch.ADA: -20},
    "f32": {Arch.VOLTA: -131, Arch.TURING: -132, Arch.AMPERE: -132, Arch.ADA: -132},
}
_NV_LATE_ZERO = {"f16": -21, "f32": -133}  # Hopper, Blackwell, RTX Blackwell
_FP8 = ("e5m2", "e4m3")
_F8F6F4 = ("e5m2", "e4m3", "e3m2", "e2m3", "e2m1")
_SCALED_KINDS = ("mxf8f6f4", "mxf4", "mxf4nvf4")

# PTX mma shapes and types by the SM version that introduced them: (shape, kind, (d, a, b, c)).
_SM70 = tuple(("m8n8k4", None, (d, "f16", "f16", c)) for d, c in (("f32", "f32"), ("f32", "f16"), ("f16", "f16")))
_SM75 = (("m16n8k8", None, ("f32", "f16", "f16", "f32")), ("m16n8k8", None, ("f16", "f16", "f16", "f16")))
_SM80 = (
    ("m8n8k4", None, ("f64", "f64", "f64", "f64")),
    ("m16n8k8", None, ("f32", "tf32", "tf32", "f32")),
    ("m16n8k4", None, ("f32", "tf32", "tf32", "f32")),
    ("m16n8k16", None, ("f32", "f16", "f16", "f32")),
    ("m16n8k16", None, ("f16", "f16", "f16", "f16")),
    ("m16n8k16", None, ("f32", "bf16", "bf16", "f32")),
    ("m16n8k8", None, ("f32", "bf16", "bf16", "f32")),
)
_SM89 = tuple((f"m16n8k{k}", None, (d, a, b, d)) for k in (32, 16) for d in ("f32", "f16") for a in _FP8 for b in _FP8)
_SM90 = tuple((f"m16n8k{k}", None, ("f64",) * 4) for k in (16, 8, 4))
_SM120 = tuple(("m16n8k32", "f8f6f4", (d, a, b, d)) for d in ("f32", "f16") for a in _F8F6F4 for b in _F8F6F4)
_MMA_BY_ARCH = {
    Arch.VOLTA: _SM70,
    Arch.TURING: _SM75 + _SM70,
    Arch.AMPERE: _SM80 + _SM75,
    Arch.ADA: _SM89 + _SM80 + _SM75,
    Arch.HOPPER: _SM90 + _SM80 + _SM75,
    Arch.BLACKWELL: _SM80 + _SM75,
    Arch.RTX_BLACKWELL: _SM120 + _SM89 + _SM80 + _SM75,
}
# Block-scaled kinds: (k, kind, block, scale type, element types).
_FP4 = ("e2m1", "e2m1")
_SCALED = tuple((32, "mxf8f6f4", 32, "ue8m0", (a, b)) for a in _F8F6F4 for b in _F8F6F4) + (
    (64, "mxf4", 32, "ue8m0", _FP4),
    (64, "mxf4nvf4", 32, "ue8m0", _FP4),
    (64, "mxf4nvf4", 16, "ue8m0", _FP4),
    (64, "mxf4nvf4", 16, "ue4m3", _FP4),
)
# wgmma (k, (d, a, b)) and tcgen05.mma (k, kind, (d, a, b)); C has D's type.
_WGMMA = (
    (8, ("f32", "tf32", "tf32")),
    (16, ("f32", "f16", "f16")),
    (16, ("f16", "f16", "f16")),
    (16, ("f32", "bf16", "bf16")),
) + tuple((32, (d, a, b)) for d in ("f32", "f16") for a in _FP8 for b in _FP8)
_TCGEN05 = (
    (8, "tf32", ("f32", "tf32", "tf32")),
    (16, "f16", ("f32", "f16", "f16")),
    (16, "f16", ("f32", "bf16", "bf16")),
    (16, "f16", ("f16", "f16", "f16")),
) + tuple((32, "f8f6f4", (d, a, b)) for d in ("f32", "f16") for a in _F8F6F4 for b in _F8F6F4)


def _shape(text: str) -> tuple[int, int, int]:
    m = re.fullmatch(r"m(\d+)n(\d+)k(\d+)", text)
    return int(m[1]), int(m[2]), int(m[3])


def _nv_name(family: Family, m, n, k, kind, block, scale, types) -> str:
    d, a, b, c = types
    head = {Family.MMA: "mma", Family.WGMMA: "wgmma", Family.TCGEN05: "tcgen05.mma"}[family]
    parts = [head, f"m{m}n{n}k{k}"]
    parts += [kind] if kind else []
    parts += [f"block{block}"] if block else []
    parts += [d, a, b] + ([c] if family is Family.MMA else [])
    parts += [scale] if scale else []
    return ".".join(parts)


def _fdpa_sum(arch: Arch, family: Family, types, k: int) -> dict:
    """T_FDPA parameters of an unscaled NVIDIA instruction (mmasim 2.1.1, nv_ptx/sim.py)."""
    d, a = types[0], types[1]
    late = arch in (Arch.HOPPER, Arch.BLACKWELL, Arch.RTX_BLACKWELL) or family is not Family.MMA
    zero = _NV_LATE_ZERO[d] if late else _NV_ZERO_EXPONENT[d][arch]
    bits = _NV_FRACTION_BITS[arch] if family is Family.MMA else 25
    group_bytes = _NV_GROUP_BYTES[arch] if family is Family.MMA else 32
    if arch is Arch.TURING and k == 4:  # m8n8k4 on Turing runs Volta's datapath
        bits, group_bytes, zero = 23, 8, _NV_ZERO_EXPONENT[d][Arch.VOLTA]
    # FP8 on Ada (mma) and Hopper (wgmma) keeps 13 fraction bits; Blackwell went back to 25.
    fp8_13 = a in _FP8 and ((family is Family.MMA and arch is Arch.ADA) or family is Family.WGMMA)
    if fp8_13:
        bits = 13
    normalization = Normalization.RNE_FP16 if d == "f16" else Normalization.RZ_FP32
    if fp8_13 and d == "f32":
        normalization = Normalization.RZ_E8M13
    group = min(k, group_bytes // operand_type(a).storage_bytes)
    return {
        "algorithm": Algorithm.T_FDPA,
        "fraction_bits": bits,
        "group_size": group,
        "split_k": k // group,
        "sum_rounding": SumRounding.TRUNCATE,
        "normalization": normalization,
        "zero_exponent": zero,
        "nan_bits": 0x7FFF if d == "f16" else 0x7FFFFFFF,
    }


def _fma_chain(k: int, d: str) -> dict:
    wide = d == "f64"
    return {
        "algorithm": Algorithm.FMA,
        "fraction_bits": None,
        "group_size": 1,
        "split_k": k,
        "sum_rounding": SumRounding.NEAREST,
        "normalization": Normalization.RNE_FP64 if wide else Normalization.RNE_FP32,
        "nan_bits": 0x7FF8000000000000 if wide else 0x7FC00000,
    }


def _block_scaled_sum(k: int, block: int, scale: str) -> dict:
    """ST_FDPA (k = 32) or GST_FDPA (k = 64) of a block-scaled kind."""
    common = {
        "sum_rounding": SumRounding.TRUNCATE,
        "normalization": Normalization.RZ_FP32,
        "block_size": block,
        "scale_type": operand_type(scale),
        "split_k": 1,
        "group_size": k,
    }
    if k == 64:
        return {**common, "algorithm": Algorithm.GST_FDPA, "fraction_bits": 35, "subgroup": 16, "zero_exponent": -139}
    return {**common, "algorithm": Algorithm.ST_FDPA, "fraction_bits": 25, "zero_exponent": -133}


def _nv_profile(arch, family, m, n, k, kind, block, scale, types) -> EngineProfile:
    d, a, b, c = types
    if kind in _SCALED_KINDS:
        params = _block_scaled_sum(k, block, scale)
    elif a == "f64":
        params = _fma_chain(k, d)
    else:
        params = _fdpa_sum(arch, family, types, k)
    name = _nv_name(family, m, n, k, kind, block, scale, types)
    t = operand_type
    cite = _cite(params["algorithm"], _NV_SOURCE)
    return EngineProfile(arch, name, m, n, k, t(a), t(b), t(c), t(d), **params, citation=cite)


def _cite(algorithm: Algorithm, source: str) -> str:
    return f"{CITATION}: {algorithm.name.replace('_', '-')}; {source}"


def _nv_profiles(arch: Arch) -> list[tuple[InstructionKey, EngineProfile]]:
    out = []

    def add(family, m, n, k, kind, block, scale, types):
        key = InstructionKey(family, m, n, k, kind, block, scale, types)
        out.append((key, _nv_profile(arch, family, m, n, k, kind, block, scale, types)))

    for shape, kind, types in _MMA_BY_ARCH[arch]:
        add(Family.MMA, *_shape(shape), kind, None, None, types)
    if arch is Arch.RTX_BLACKWELL:
        for k, kind, block, scale, (a, b) in _SCALED:
            add(Family.MMA, 16, 8, k, kind, block, scale, ("f32", a, b, "f32"))
    if arch is Arch.HOPPER:
        for k, (d, a, b) in _WGMMA:
            add(Family.WGMMA, 64, 8, k, None, None, None, (d, a, b, d))
    if arch is Arch.BLACKWELL:
        for m in (64, 128):
            for k, kind, (d, a, b) in _TCGEN05:
                add(Family.TCGEN05, m, 8, k, kind, None, None, (d, a, b, d))
        for k, kind, block, scale, (a, b) in _SCALED:
            add(Family.TCGEN05, 128, 8, k, kind, block, scale, ("f32", a, b, "f32"))
    return out


# ----- AMD -------------------------------------------------------------------------------------
# LLVM's names (v_mfma_<name>); CDNA1 and CDNA2 write the type after K without an underscore.
_CDNA1 = (
    "f32_32x32x2f32",
    "f32_32x32x1f32",
    "f32_16x16x4f32",
    "f32_16x16x1f32",
    "f32_4x4x1f32",
    "f32_32x32x8f16",
    "f32_32x32x4f16",
    "f32_16x16x16f16",
    "f32_16x16x4f16",
    "f32_4x4x4f16",
    "f32_32x32x4bf16",
    "f32_32x32x2bf16",
    "f32_16x16x8bf16",
    "f32_16x16x2bf16",
    "f32_4x4x2bf16",
)
_CDNA2 = (
    "f64_16x16x4f64",
    "f64_4x4x4f64",
    "f32_32x32x8bf16_1k",
    "f32_32x32x4bf16_1k",
    "f32_16x16x16bf16_1k",
    "f32_16x16x4bf16_1k",
    "f32_4x4x4bf16_1k",
) + _CDNA1
_CDNA3 = (
    "f64_16x16x4_f64",
    "f64_4x4x4_4b_f64",
    "f32_32x32x1_2b_f32",
    "f32_16x16x1_4b_f32",
    "f32_4x4x1_16b_f32",
    "f32_32x32x2_f32",
    "f32_16x16x4_f32",
    "f32_16x16x8_xf32",
    "f32_32x32x4_xf32",
    "f32_32x32x4_2b_f16",
    "f32_16x16x4_4b_f16",
    "f32_4x4x4_16b_f16",
    "f32_32x32x8_f16",
    "f32_16x16x16_f16",
    "f32_32x32x4_2b_bf16",
    "f32_16x16x4_4b_bf16",
    "f32_4x4x4_16b_bf16",
    "f32_32x32x8_bf16",
    "f32_16x16x16_bf16",
) + tuple(f"f32_{s}_{a}_{b}" for s in ("16x16x32", "32x32x16") for a in ("bf8", "fp8") for b in ("bf8", "fp8"))
_MFMA_BY_ARCH = {Arch.CDNA1: _CDNA1, Arch.CDNA2: _CDNA2, Arch.CDNA3: _CDNA3}
_MFMA_NAME = re.compile(
    r"(f32|f64)_(\d+)x(\d+)x(\d+)(?:_(\d+)b)?_?(xf32|f32|f64|bf16|f16|fp8|bf8)(?:_(fp8|bf8))?(_1k)?"
)


def _mfma_key(body: str) -> InstructionKey | None:
    """The key of an LLVM mfma name without its `v_mfma_` (the block count `_Nb` is ignored: one
    block is one M x N x K product)."""
    m = _MFMA_NAME.fullmatch(body)
    if not m:
        return None
    d, a = m[1], m[6]
    b = m[7] or a
    return InstructionKey(Family.MFMA, int(m[2]), int(m[3]), int(m[4]), None, None, None, (d, a, b, d), bool(m[8]))


def _amd_sum(arch: Arch, key: InstructionKey) -> dict:
    """The algorithm of an mfma instruction (mmasim 2.1.1, amd/sim.py)."""
    d, a = key.types[0], key.types[1]
    k = key.k
    if a in ("f32", "f64"):
        return _fma_chain(k, d)
    if a in ("fp8", "bf8"):
        group = min(k, 16)
        return {
            "algorithm": Algorithm.GTR_FDPA,
            "fraction_bits": 24,
            "second_fraction_bits": 31,
            "subgroup": 2,
            "group_size": group,
            "split_k": k // group,
            "sum_rounding": SumRounding.ROUND_DOWN,
            "normalization": Normalization.RNE_FP32,
        }
    if arch is Arch.CDNA1:
        group = min(k, 4 if a == "f16" else 2)
        return {
            "algorithm": Algorithm.E_FDPA,
            "fraction_bits": None,
            "group_size": group,
            "split_k": k // group,
            "sum_rounding": SumRounding.EXACT,
            "normalization": Normalization.RNE_FP32,
            "nan_bits": 0x7FC00000,
        }
    if arch is Arch.CDNA2:
        pair = 2 if a == "bf16" and not key.one_k else 4
        return {
            "algorithm": Algorithm.FTZ_MUL_ADD,
            "fraction_bits": None,
            "group_size": pair,
            "subgroup": pair,
            "split_k": k // pair,
            "sum_rounding": SumRounding.NEAREST,
            "normalization": Normalization.RNE_FP32,
            "flush_denormals": True,
            "nan_bits": 0x7FC00000,
        }
    group = min(k, 4 if a == "xf32" else 8)
    return {
        "algorithm": Algorithm.TR_FDPA,
        "fraction_bits": 24,
        "second_fraction_bits": 31,
        "group_size": group,
        "split_k": k // group,
        "sum_rounding": SumRounding.ROUND_DOWN,
        "normalization": Normalization.RNE_FP32,
    }


def _amd_profiles(arch: Arch) -> list[tuple[InstructionKey, EngineProfile]]:
    out = []
    for body in _MFMA_BY_ARCH[arch]:
        key = _mfma_key(body)
        d, a, b, c = (operand_type(t) for t in key.types)
        params = _amd_sum(arch, key)
        cite = _cite(params["algorithm"], _AMD_SOURCE)
        out.append((key, EngineProfile(arch, f"mfma.{body}", key.m, key.n, key.k, a, b, c, d, **params, citation=cite)))
    return out


# ----- the catalog and the parser ----------------------------------------------------------------
@functools.cache
def engine_table() -> Mapping[Arch, Mapping[InstructionKey, EngineProfile]]:
    """Every supported instruction of every architecture, by key (built on first use, read-only)."""
    table = {}
    for arch in Arch:
        pairs = _amd_profiles(arch) if arch.name.startswith("CDNA") else _nv_profiles(arch)
        table[arch] = MappingProxyType(dict(pairs))
    return MappingProxyType(table)


def engine_catalog() -> tuple[EngineProfile, ...]:
    """Every profile, architecture by architecture (wgmma and tcgen05 at N = 8; N is free there)."""
    return tuple(p for arch in Arch for p in engine_table()[arch].values())


_ARCH_ALIASES = {"ada_lovelace": "ada", "adalovelace": "ada", "rtxblackwell": "rtx_blackwell"}
_DROPPED = {"sync", "aligned", "row", "col", "block_scale", "mma_async", "cta_group::1"}


def parse_arch(arch: Arch | str) -> Arch:
    if isinstance(arch, str):
        key = re.sub(r"[\s\-]+", "_", arch.strip().lower())
        arch = _ARCH_ALIASES.get(key, key)
    return parse_enum(Arch, arch, "arch")


def _bad(instruction: str, why: str) -> ValueError:
    return ValueError(f"instruction {instruction!r}: {why}")


def _nv_key(instruction: str, family: Family, tokens: list[str]) -> InstructionKey:
    shapes = [t for t in tokens if re.fullmatch(r"m\d+n\d+k\d+", t)]
    if len(shapes) != 1:
        raise _bad(instruction, "needs one shape such as m16n8k16")
    m, n, k = _shape(shapes[0])
    rest = [t.removeprefix("kind::") for t in tokens if t != shapes[0] and t not in _DROPPED]
    kind = block = scale = None
    types = []
    for pos, token in enumerate(rest):
        if vec := re.fullmatch(r"scale_vec::(\d)x", token):
            block = k // int(vec[1])
        elif bm := re.fullmatch(r"block(\d+)", token):
            block = int(bm[1])
        elif token in ("ue8m0", "ue4m3"):
            scale = token
        elif pos == 0 and (token in _SCALED_KINDS or token == "f8f6f4" or family is Family.TCGEN05):
            kind = token
        else:
            types.append(token)
    if family is not Family.MMA and len(types) == 3:
        types.append(types[0])  # wgmma and tcgen05 accumulate in D's type
    if len(types) != 4:
        raise _bad(instruction, "needs the types of D, A, B and C (mma) or of D, A and B (wgmma, tcgen05)")
    return InstructionKey(family, m, n, k, kind, block, scale, tuple(types))


def parse_instruction(instruction: str) -> tuple[InstructionKey, int]:
    """An instruction name as (key, N): PTX `mma.m16n8k16.f32.f16.f16.f32` (qualifiers such as
    `sync.aligned`, `row.col`, `kind::` and `block_scale` may be written), `wgmma.m64n8k32.f32.
    e4m3.e4m3`, `tcgen05.mma.m128n8k64.mxf4nvf4.block16.f32.e2m1.e2m1.ue4m3`, or LLVM's
    `mfma.f32_16x16x16_f16` (also `v_mfma_...`, and with or without the `_` before the type)."""
    if not isinstance(instruction, str):
        raise TypeError(f"instruction must be a string, got {type(instruction).__name__}")
    text = instruction.strip().lower()
    for prefix in ("v_mfma_", "__builtin_amdgcn_mfma_", "mfma."):
        if text.startswith(prefix):
            key = _mfma_key(text[len(prefix) :])
            if key is None:
                raise _bad(instruction, "is not an mfma name such as mfma.f32_16x16x16_f16")
            return key, key.n
    for prefix, family in (("wgmma.", Family.WGMMA), ("tcgen05.mma.", Family.TCGEN05), ("mma.", Family.MMA)):
        if text.startswith(prefix):
            key = _nv_key(instruction, family, text[len(prefix) :].split("."))
            if family is Family.MMA:
                return key, key.n
            # wgmma and tcgen05 take any N that is a multiple of 8 up to 256: one arithmetic.
            if key.n % 8 or not 8 <= key.n <= 256:
                raise _bad(instruction, f"N must be a multiple of 8 from 8 to 256, got {key.n}")
            return key._replace(n=8), key.n
    raise _bad(instruction, "must start with mma., wgmma., tcgen05.mma. or mfma.")


def _fill_scaled(key: InstructionKey, block: int | None, scale: str | None) -> InstructionKey:
    """A block-scaled key with its block size and scale type: from the name, else the hints, else
    the kind's only choice (mxf8f6f4 and mxf4: 32 and ue8m0; mxf4nvf4 at block 32: ue8m0)."""
    if key.kind not in _SCALED_KINDS:
        return key
    block = key.block or block or (32 if key.kind != "mxf4nvf4" else None)
    if block is None:
        raise ValueError("instruction: mxf4nvf4 needs its block size: write .block16 or .block32, or pass scales")
    scale = key.scale or scale or ("ue8m0" if key.kind != "mxf4nvf4" or block == 32 else "ue4m3")
    return key._replace(block=block, scale=scale)


def get_engine(
    arch: Arch | str, instruction: str, *, block: int | None = None, scale: str | None = None
) -> EngineProfile:
    """The profile of `instruction` on `arch`. block and scale fill in a block-scaled kind's block
    size and scale type ('ue8m0' or 'ue4m3') where the name leaves them out."""
    target = parse_arch(arch)
    key, n = parse_instruction(instruction)
    key = _fill_scaled(key, block, scale)
    table = engine_table()[target]
    found = table.get(key)
    if found is None and key.family is Family.MMA and key.kind is None:
        found = table.get(key._replace(kind="f8f6f4"))  # FP6/FP4 written without kind::f8f6f4
    if found is None:
        raise ValueError(
            f"instruction {instruction!r} is not one that lowbit models on {target.value}; "
            f"lowbit.simulator.engines() lists them (N may be any multiple of 8 up to 256 for wgmma and tcgen05)"
        )
    if n != found.n:
        name = found.instruction.replace(f"n{found.n}k", f"n{n}k", 1)
        found = dataclasses.replace(found, n=n, instruction=name)
    return found
