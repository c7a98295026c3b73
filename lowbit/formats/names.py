"""Turning a user's format name or spec into a spec object (the one place strings are parsed)."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re

import numpy as np

from . import constructions, p3109
from .catalog import ALIASES, SCALE_FORMATS, catalog
from .codebook import CodebookFormat, VectorCodebookFormat
from .grid import GridFormat
from .scaled import ScaledFormat, ScaleRule
from .spec import ElementFormat, FloatFormat, IntFormat

_FLOAT_NAME = re.compile(r"^(u?)e(\d+)m(\d+)$")
_INT_NAME = re.compile(r"^(u?)int(\d+)$")
_BLOCK_CODEBOOK_NAME = re.compile(r"^(af4|bof4|bof4_mae|bof4s|bof4s_mae)(?:_b(\d+))?$")
_CONSTRUCTIONS = {
    "af4": "af4",
    "bof4": "bof4_mse",
    "bof4_mae": "bof4_mae",
    "bof4s": "bof4s_mse",
    "bof4s_mae": "bof4s_mae",
}


@functools.cache
def block_codebook(kind: str, block: int) -> ScaledFormat:
    """AF4 / BOF4 / BOF4-S (MSE or MAE) for blocks of `block` elements, computed (seconds; cached
    on disk, see `disk_cache`): the codebook with an fp32 absmax per block (signed for BOF4-S)."""
    values = getattr(constructions, _CONSTRUCTIONS[kind])(block)
    name = f"{kind}_b{block}"
    book = CodebookFormat(values, source=f"{kind} construction for block {block}", name=f"{name}_codebook")
    rule = ScaleRule.SIGNED_ABSMAX if kind.startswith("bof4s") else ScaleRule.ABSMAX
    return ScaledFormat(book, block, rule=rule, name=name)


def known_names() -> list[str]:
    """Every name `get_format` accepts literally (catalog names, aliases and named scale formats)."""
    return sorted([*catalog, *ALIASES, *SCALE_FORMATS])


def _unknown(name: str) -> ValueError:
    close = difflib.get_close_matches(name, known_names(), n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(
        f"format: unknown name {name!r}{hint} Any 'eXmY', 'ueXmY', 'intN', 'uintN', 'af4_bN', 'bof4_bN', "
        "'bof4_mae_bN', 'bof4s_bN', 'bof4s_mae_bN' or IEEE P3109 'binaryKpP' + s|u + e|f is also accepted."
    )


def _parse_generic(name: str, options: dict) -> ElementFormat | None:
    m = _FLOAT_NAME.match(name)
    if m:
        kwargs = {"signed": not m.group(1), "specials": "none", **options}
        return FloatFormat(int(m.group(2)), int(m.group(3)), name=name, **kwargs)
    spec = p3109.parse(name, options)
    if spec is not None:
        return spec
    m = _INT_NAME.match(name)
    if m:
        return IntFormat(int(m.group(2)), signed=not m.group(1), name=name, **options)
    m = _BLOCK_CODEBOOK_NAME.match(name)
    if m:
        block = int(m.group(2) or 64)
        if not 2 <= block <= 1 << 16:
            raise ValueError(f"format {name!r}: block must be in [2, 65536], got {block}")
        spec = block_codebook(m.group(1), block)
        return dataclasses.replace(spec, **options) if options else spec
    return None


def _is_dtype(fmt) -> bool:
    """A NumPy dtype or scalar type: np.float16, np.dtype("int8"), and ml_dtypes' types, which are
    NumPy scalar types too (so ml_dtypes, a test extra, need not be imported to recognise them)."""
    return isinstance(fmt, np.dtype) or (isinstance(fmt, type) and issubclass(fmt, np.generic))


def _dtype_format(dtype: np.dtype, options: dict) -> ElementFormat | CodebookFormat | ScaledFormat:
    """The catalog format that a dtype names: ml_dtypes' names are the catalog's element names."""
    # ml_dtypes' types are kind 'V' (opaque bytes); NumPy's own numbers are 'f', 'i' and 'u'
    if dtype.kind not in "fiuV" or (dtype.kind == "V" and dtype.type.__module__.split(".")[0] != "ml_dtypes"):
        raise TypeError(f"format: dtype {dtype.name!r} is not a real number format")
    if dtype.itemsize > 2:  # float32 is the reference every format is measured against, not a format
        raise ValueError(
            f"format: dtype {dtype.name!r} has no lowbit format: element formats have at most 16 bits "
            "(float32 inputs are the reference that formats are measured against)"
        )
    try:
        spec = get_format(dtype.name)
    except ValueError:
        raise ValueError(f"format: dtype {dtype.name!r} has no lowbit format of that name") from None
    return get_format(spec, **options) if options else spec


def get_format(fmt, **options) -> ElementFormat | CodebookFormat | ScaledFormat:
    """Return the frozen spec for a format name or spec.

    fmt: a catalog name ("float8_e4m3fn"), an alias ("fp8_e4m3"), any "eXmY" / "ueXmY"
    minifloat (default: bias 2^(X-1)-1, subnormals, every code finite, saturating), any
    "intN" / "uintN", any IEEE P3109 "binaryKpP" + "s"|"u" + "e"|"f" ("binary8p3se"; see
    `lowbit.formats.p3109` for the allowed K and P and the defaults: extended domain
    non-saturating to Inf, finite domain saturating), a block-scaled or codebook name ("mxfp4",
    "nvfp4", "nf4"), a spec object, or a NumPy or ml_dtypes dtype or scalar type (np.float16,
    ml_dtypes.float8_e4m3fn, np.dtype("bfloat16"): the format of the dtype's name; float32 and
    wider are refused). Keyword options replace spec fields (bias, subnormals, specials,
    overflow, signed, ties for floats; signed, symmetric for integers; block, scale, rule,
    asymmetric, ... for block-scaled formats, e.g. get_format("mxfp4", rule="ceil")).
    """
    if isinstance(fmt, (FloatFormat, IntFormat, CodebookFormat, GridFormat, ScaledFormat, VectorCodebookFormat)):
        spec = fmt
    elif isinstance(fmt, str):
        key = fmt.strip().lower()
        key = ALIASES.get(key, key)
        if key in catalog:
            spec = catalog[key]
        elif key in SCALE_FORMATS:
            spec = SCALE_FORMATS[key]
        else:
            try:
                spec = _parse_generic(key, options)
            except TypeError as err:
                raise TypeError(f"format {fmt!r}: {err}") from None
            if spec is None:
                raise _unknown(fmt)
            return spec
    elif _is_dtype(fmt):
        return _dtype_format(np.dtype(fmt), options)
    else:
        raise TypeError(f"format must be a name, a format spec or a NumPy / ml_dtypes dtype, got {type(fmt).__name__}")
    if not options:
        return spec
    valid = {f.name for f in dataclasses.fields(spec)} - {"name"}
    bad = sorted(set(options) - valid)
    if bad:
        raise TypeError(f"format {fmt!r}: unknown option(s) {bad}; valid options are {sorted(valid)}")
    return dataclasses.replace(spec, name=None, **options)
