"""The catalog of named element formats: one data literal per format.

Names follow ml_dtypes. Each literal's semantics are those of the ml_dtypes type of the same
name on float32 input, except that integers round and clip where ml_dtypes truncates and wraps.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType

from .spec import ElementFormat, Family, FloatFormat, IntFormat, Overflow, Specials, Ties

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


class Catalog(Mapping[str, ElementFormat]):
    """Read-only mapping name -> format spec, grouped by family.

    Iterating gives names; `catalog.family(Family.FLOAT)` gives the names of one family.
    Specs carry their catalog name in `.name`.
    """

    def __init__(self, literals: Mapping[str, ElementFormat]) -> None:
        from dataclasses import replace

        self._specs = MappingProxyType({n: replace(s, name=n) for n, s in literals.items()})

    def __getitem__(self, name: str) -> ElementFormat:
        return self._specs[name]

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
