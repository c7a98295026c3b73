"""Formats as data: frozen specs, the catalog of named formats, and name parsing."""

from .catalog import ALIASES, Catalog, catalog
from .names import get_format, known_names
from .spec import ElementFormat, Family, FloatFormat, IntFormat, Overflow, Specials, Ties

__all__ = [
    "ALIASES",
    "Catalog",
    "ElementFormat",
    "Family",
    "FloatFormat",
    "IntFormat",
    "Overflow",
    "Specials",
    "Ties",
    "catalog",
    "get_format",
    "known_names",
]
