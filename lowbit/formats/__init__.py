"""Formats as data: frozen specs, the catalog of named formats, and name parsing."""

from .accumulator import Accumulator, AccumulatorKind, get_accumulator
from .catalog import ALIASES, AnyFormat, Catalog, catalog
from .codebook import CodebookFormat, VectorCodebookFormat
from .engines import Algorithm, Arch, EngineProfile, Normalization, OperandType, SumRounding, get_engine
from .enums import parse_enum
from .grid import GridFormat
from .names import get_format, known_names
from .scaled import DoubleQuant, MicroExponent, ScaledFormat, ScaleRule, TensorScale
from .spec import ElementFormat, Family, FloatFormat, IntFormat, Overflow, Specials, Ties

__all__ = [
    "ALIASES",
    "Algorithm",
    "Arch",
    "EngineProfile",
    "Normalization",
    "OperandType",
    "SumRounding",
    "get_engine",
    "Accumulator",
    "AccumulatorKind",
    "get_accumulator",
    "AnyFormat",
    "CodebookFormat",
    "DoubleQuant",
    "MicroExponent",
    "ScaleRule",
    "ScaledFormat",
    "TensorScale",
    "VectorCodebookFormat",
    "Catalog",
    "ElementFormat",
    "Family",
    "GridFormat",
    "FloatFormat",
    "IntFormat",
    "Overflow",
    "Specials",
    "Ties",
    "catalog",
    "get_format",
    "known_names",
    "parse_enum",
]
