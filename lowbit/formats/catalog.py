"""The catalog of named formats: one data literal per format.

Element names follow ml_dtypes. Each element literal's semantics are those of the ml_dtypes type
of the same name on float32 input, except that integers round and clip where ml_dtypes truncates
and wraps. Block-scaled and codebook formats follow DESIGN.md section 3; computed codebooks are
built on first use.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from types import MappingProxyType

from . import tables, tables_higgs
from .codebook import CodebookFormat, VectorCodebookFormat
from .constructions import lloyd_max_normal
from .grid import GridFormat
from .scaled import DoubleQuant, MicroExponent, ScaledFormat, ScaleRule, TensorScale
from .spec import ElementFormat, Family, FloatFormat, IntFormat, Overflow, Specials, Ties

AnyFormat = ElementFormat | CodebookFormat | ScaledFormat

_FN, _FNUZ, _NONE = Specials.FN, Specials.FNUZ, Specials.NONE

_LITERALS: dict[str, ElementFormat] = {
    # 8-bit floats
    "float8_e4m3fn": FloatFormat(4, 3, specials=_FN),
    "float8_e4m3fnuz": FloatFormat(4, 3, bias=8, specials=_FNUZ),
    "float8_e5m2": FloatFormat(5, 2),
    "float8_e5m2fnuz": FloatFormat(5, 2, bias=16, specials=_FNUZ),
    "float8_e4m3b11fnuz": FloatFormat(4, 3, bias=11, specials=_FNUZ),
    "float8_e3m4": FloatFormat(3, 4),
    "float8_e4m3": FloatFormat(4, 3),
    "float8_e8m0fnu": FloatFormat(8, 0, signed=False, subnormals=False, specials=_FN, ties=Ties.AWAY),
    # 6- and 4-bit floats (OCP MX element types): every code finite, saturating
    "float6_e2m3fn": FloatFormat(2, 3, specials=_NONE, overflow=Overflow.SATURATE),
    "float6_e3m2fn": FloatFormat(3, 2, specials=_NONE, overflow=Overflow.SATURATE),
    "float4_e2m1fn": FloatFormat(2, 1, specials=_NONE, overflow=Overflow.SATURATE),
    # 16-bit floats
    "bfloat16": FloatFormat(8, 7),
    "float16": FloatFormat(5, 10),
    # integers: rounded and clipped
    "int2": IntFormat(2),
    "int4": IntFormat(4),
    "int8": IntFormat(8),
    "uint2": IntFormat(2, signed=False),
    "uint4": IntFormat(4, signed=False),
    "uint8": IntFormat(8, signed=False),
}


def _named(name: str):
    return replace(_LITERALS[name], name=name)


_E8M0, _E4M3, _FP4, _FP16 = (_named(n) for n in ("float8_e8m0fnu", "float8_e4m3fn", "float4_e2m1fn", "float16"))
_NF4 = CodebookFormat(tables.NF4, source="bitsandbytes NF4 (Dettmers et al. 2023)", name="nf4_codebook")
_NF3 = CodebookFormat(tables.NF3, source="AFPQ (Zhang et al. 2023), Appendix A", name="nf3_codebook")
_BINARY = CodebookFormat(tables.BINARY, source="{-1, +1}", name="binary_codebook")
_FP3 = CodebookFormat(tables.FP3_E2M0, source="AFPQ (Zhang et al. 2023), Appendix A", name="fp3_e2m0")
_MX = {"scale": _E8M0, "rule": ScaleRule.OCP_FLOOR, "block": 32}
_MX_MICRO = {"scale": _E8M0, "rule": ScaleRule.OCP_FLOOR, "block": 16, "micro": MicroExponent(block=2, bits=1)}
_NV = {"scale": _E4M3, "rule": ScaleRule.ABSMAX, "block": 16}
# UE5M3, the unsigned E5M3 block scale Hu, Luschi & Balanca (arXiv 2509.17791) propose: no sign, 5
# exponent bits (bias 15), 3 mantissa bits, subnormals, no Inf, the all-ones code NaN (the
# finite-with-NaN convention of E4M3 and UE8M0, since a block holding NaN or Inf needs a NaN scale
# code): 2^-17 to 114688. A scale literal only, not a catalog element (ml_dtypes has no such type);
# the generic name "ue5m3" parses to the all-finite minifloat instead (0xFF = 122880).
UE5M3 = FloatFormat(5, 3, signed=False, specials=_FN, name="ue5m3fn")
_NV_SEARCH = {**_NV, "rule": ScaleRule.MSE, "tensor_scale": TensorScale.NVFP4}


class Lazy:
    """A catalog entry computed on first use (a construction that needs SciPy, say)."""

    def __init__(self, build, family: Family) -> None:
        self.build = build
        self.family = family


def _afpq(element: ElementFormat | CodebookFormat, group: int) -> ScaledFormat:
    return ScaledFormat(element, group, scale=_FP16, asymmetric=True)


_LITERALS.update(
    {
        # OCP MX v1.0: E8M0 power-of-two scale per 32 elements
        "mxfp8_e4m3": ScaledFormat(_E4M3, **_MX),
        "mxfp8_e5m2": ScaledFormat(_named("float8_e5m2"), **_MX),
        "mxfp6_e2m3": ScaledFormat(_named("float6_e2m3fn"), **_MX),
        "mxfp6_e3m2": ScaledFormat(_named("float6_e3m2fn"), **_MX),
        "mxfp4": ScaledFormat(_FP4, **_MX),
        "mxint8": ScaledFormat(IntFormat(8, symmetric=True), **_MX),
        "mxint4": ScaledFormat(IntFormat(4, symmetric=True), **_MX),
        # Rouhani et al. (ISCA 2023): E8M0 per 16, a 1-bit micro-exponent per 2, sign-magnitude
        # elements of 7, 4, 2 magnitude bits in 1.(m-1) fixed point (MXINT8's fixed point)
        "mx9": ScaledFormat(IntFormat(8, symmetric=True), **_MX_MICRO),
        "mx6": ScaledFormat(IntFormat(5, symmetric=True), **_MX_MICRO),
        "mx4": ScaledFormat(IntFormat(3, symmetric=True), **_MX_MICRO),
        # NVIDIA: E4M3 scale per 16 elements
        "nvfp4": ScaledFormat(_FP4, tensor_scale=TensorScale.NVFP4, **_NV),
        "nvfp4_single": ScaledFormat(_FP4, scale_min=2.0**-6, scale_max=448.0, divide=True, **_NV),
        "nvint4": ScaledFormat(IntFormat(4, symmetric=True), tensor_scale=TensorScale.NVFP4, **_NV),
        # NVFP4 variants. Four over six (Cook et al. 2025, arXiv 2512.02010): per block, the
        # maximum scaled to 6 or to 4, whichever has the smaller squared error (ties: 6), under
        # S_enc = 256 * 6 / amax so that 1.5 x the block scale stays within E4M3's 448
        "nvfp4_4over6": ScaledFormat(_FP4, scale_factors=(1.0, 1.5), tensor_scale_max=256.0, **_NV_SEARCH),
        # NVIDIA's NVFP4 training recipe (arXiv 2509.25149): one E4M3 scale per 16 x 16 weight tile
        "nvfp4_2d": ScaledFormat(_FP4, tensor_scale=TensorScale.NVFP4, block_rows=16, **_NV),
        # UE5M3 block scales (Hu et al. 2025), the tensor scale mapping amax to UE5M3's 114688
        "nvfp4_ue5m3": ScaledFormat(_FP4, tensor_scale=TensorScale.NVFP4, **{**_NV, "scale": UE5M3}),
        # the E4M3 block scale searched over shrink factors 1.00 ... 0.50 for the least squared error
        "nvfp4_mse": ScaledFormat(_FP4, **_NV_SEARCH),
        # integers with an absmax scale: per output channel (fp32) or per group (fp16)
        "int8_per_channel": ScaledFormat(IntFormat(8, symmetric=True), None),
        "int4_per_channel": ScaledFormat(IntFormat(4, symmetric=True), None),
        "int8_g128": ScaledFormat(IntFormat(8, symmetric=True), 128, scale=_FP16),
        "int4_g128": ScaledFormat(IntFormat(4, symmetric=True), 128, scale=_FP16),
        "int4_g128_asym": ScaledFormat(IntFormat(4, signed=False), 128, scale=_FP16, asymmetric=True),
        "int8_per_channel_asym": ScaledFormat(IntFormat(8, signed=False), None, asymmetric=True),
        # codebooks with an fp32 absmax per block (bitsandbytes' layout)
        "nf4": ScaledFormat(_NF4, 64),
        "nf3": ScaledFormat(_NF3, 64),
        "nf4_dq": Lazy(lambda: ScaledFormat(_NF4, 64, scale=DoubleQuant()), Family.SCALED),
        "nf4_codebook": _NF4,
        "nf3_codebook": _NF3,
        "fp3_e2m0": _FP3,
        # AFPQ: separate scales for the positive and the negative values of each group
        "afpq_fp4_g128": _afpq(_FP4, 128),
        "afpq_fp3_g128": _afpq(_FP3, 128),
        "afpq_nf4_g128": _afpq(_NF4, 128),
        "afpq_nf3_g128": _afpq(_NF3, 128),
        # ternary: BitNet b1.58, round(W / mean|W|) clipped to [-1, 1] over the whole tensor
        "bitnet_b158": ScaledFormat(IntFormat(2, symmetric=True), 0, rule=ScaleRule.ABSMEAN),
        "twn": ScaledFormat(GridFormat(1.0, name="ternary"), None, rule=ScaleRule.TWN),
        # ParetoQ (Liu et al. 2025), per output row (the block axis): 1-bit sign(w) * mean|w|;
        # ternary and 2-bit SEQ with alpha = max|w|; 3- and 4-bit LSQ with an MSE-searched step
        "paretoq_1bit": ScaledFormat(_BINARY, None, rule=ScaleRule.ABSMEAN),
        "paretoq_ternary": ScaledFormat(GridFormat(1.5, range=1.0, name="seq_ternary"), None, divide=True),
        "paretoq_2bit": ScaledFormat(GridFormat(2.0, 0.5, -2, 1, range=1.0, name="seq_2bit"), None, divide=True),
        "lsq_int3": ScaledFormat(IntFormat(3), None, rule=ScaleRule.MSE, divide=True),
        "lsq_int4": ScaledFormat(IntFormat(4), None, rule=ScaleRule.MSE, divide=True),
        "ternary_codebook": CodebookFormat(tables.TERNARY, source="{-1, 0, +1}"),
        # HIGGS p = 2: pairs of N(0, 1) coordinates to the nearest point of a shipped 2-D grid
        "higgs_p2_n16": VectorCodebookFormat(tables_higgs.HIGGS_P2_N16, source="HIGGS (Malinovskii et al. 2024)"),
        "higgs_p2_n64": VectorCodebookFormat(tables_higgs.HIGGS_P2_N64, source="HIGGS (Malinovskii et al. 2024)"),
        "binary_codebook": _BINARY,
    }
)

# Scale formats named outside the catalog (whose element names all follow ml_dtypes).
SCALE_FORMATS: Mapping[str, FloatFormat] = MappingProxyType({UE5M3.name: UE5M3})

ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "fp8_e4m3": "float8_e4m3fn",
        "fp8_e5m2": "float8_e5m2",
        "fp6_e2m3": "float6_e2m3fn",
        "fp6_e3m2": "float6_e3m2fn",
        "fp4": "float4_e2m1fn",
        "fp4_e2m1": "float4_e2m1fn",
        "e8m0": "float8_e8m0fnu",
        "bf16": "bfloat16",
        "fp16": "float16",
    }
)


def _higgs(n: int) -> Lazy:
    def build() -> CodebookFormat:
        return CodebookFormat(lloyd_max_normal(n), source=f"Lloyd-Max quantizer of N(0,1), {n} levels (HIGGS p=1)")

    return Lazy(build, Family.CODEBOOK)


_LITERALS.update({f"higgs_p1_n{n}": _higgs(n) for n in (4, 8, 16)})


class Catalog(Mapping[str, AnyFormat]):
    """Read-only mapping name -> format spec, grouped by family.

    Iterating gives names; `catalog.family(Family.FLOAT)` gives the names of one family.
    Specs carry their catalog name in `.name`.
    """

    def __init__(self, literals: Mapping[str, AnyFormat]) -> None:
        self._specs = MappingProxyType(dict(literals))
        self._built: dict[str, AnyFormat] = {}

    def __getitem__(self, name: str) -> AnyFormat:
        # A memo, not state: an entry's value never changes once built.
        if name not in self._built:
            spec = self._specs[name]
            spec = spec.build() if isinstance(spec, Lazy) else spec
            self._built[name] = replace(spec, name=name)
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def family(self, family: Family | str) -> tuple[str, ...]:
        fam = family if isinstance(family, Family) else Family(family)
        return tuple(n for n, s in self._specs.items() if s.family is fam)

    @property
    def families(self) -> dict[str, tuple[str, ...]]:
        return {f.value: self.family(f) for f in Family}


catalog = Catalog(_LITERALS)
