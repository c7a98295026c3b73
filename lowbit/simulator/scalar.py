"""Scalar element arithmetic, written once and compiled for every target by `make_kernels(jit)`.

The input reaches these functions as the integer bit pattern of an IEEE float32 or float64
(the array drivers pass an integer view of the input array), so the arithmetic is exact integer
work on sign, exponent and significand: no float operation can round behind our back, and no
bit-cast is needed on either target. Every format is described by the int64 parameter vector
built by `simulator.params`; one compiled kernel serves them all.

`make_kernels(jit)` compiles them for a target: each function is cloned with globals in which
the names of the other scalar functions refer to their compiled versions for that target. The
clones are plain functions (no closures), so Numba's on-disk cache can key them by code alone.

Integers (python ints in the CUDA simulator, int64 when compiled) never exceed 2^62, so the
code means the same in every target; the stochastic hash keeps products below 2^49 for the
same reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import FunctionType

import numpy as np

# Everything compiled code depends on lives in this file, because Numba's on-disk cache is
# invalidated only by changes to the file of the function it caches: the parameter-vector layout,
# the rounding-mode numbers, the scalar functions and the CPU loops.

# Layout of the int64 parameter vector (filled by simulator.params).
(
    P_IS_INT,
    P_M,
    P_EMIN,
    P_C,
    P_E_OVER,
    P_MAXMAG,
    P_NEGMAX,
    P_SIGN_SHIFT,
    P_MASK,
    P_INF,
    P_NAN_POS,
    P_NAN_NEG,
    P_OVERFLOW,
    P_TIES_AWAY,
    P_NEGZERO,
    P_ZERO_POS,
    P_ZERO_NEG,
    P_NEG_UNSIGNED,
    P_HAS_ZERO,
    P_COUNT,
) = range(20)

OVERFLOW_SATURATE, OVERFLOW_INF, OVERFLOW_NAN = 0, 1, 2
OVERFLOW_SATURATE, OVERFLOW_INF, OVERFLOW_NAN = 0, 1, 2

# Rounding modes as kernels see them (the values of the Rounding enum).
RNE, RTZ, RNA, RUP, RDOWN, STOCHASTIC = range(6)
# A magnitude past every format's range: marks overflow before it is resolved.
_OVER = 1 << 40
_M32 = 0xFFFFFFFF


def mul32(a, c):
    # a * c mod 2^32 with every partial product below 2^49.
    return (a * (c & 0xFFFF) + (((a * (c >> 16)) & 0xFFFF) << 16)) & _M32


def hash32(x):
    x = x & _M32
    x = x ^ (x >> 16)
    x = mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def random62(seed, idx):
    """62 uniform random bits for element `idx`: a counter-based hash, so results do not
    depend on the target, the thread count or the order of evaluation."""
    h1 = hash32((idx & _M32) ^ hash32(seed ^ 0x9E3779B9))
    h1 = hash32(h1 ^ ((idx >> 32) & _M32) ^ hash32((seed >> 32) ^ 0x85EBCA6B))
    h2 = hash32(h1 ^ 0x27D4EB2F)
    return ((h1 & 0x7FFFFFFF) << 31) | (h2 & 0x7FFFFFFF)


def round_shift(sig, s, base, neg, mode, ties_away, seed, idx):
    """Code base + round(sig / 2^s) under `mode`; `neg` is the sign of the value."""
    if s > 62:
        # Far below half a step: only sticky bits remain.
        n = 0
        rem = 1
        s = 62
    else:
        n = sig >> s
        rem = sig & ((1 << s) - 1)
    code = base + n
    if rem == 0:
        return code
    half = 1 << (s - 1)
    # Nearest modes are written without branches: on real data the round-up decision is a coin
    # flip, and a mispredicted branch costs more than the whole rounding.
    if mode == RNE:
        up = (rem > half) | ((rem == half) & ((ties_away != 0) | ((code & 1) == 1)))
    elif mode == RNA:
        up = rem >= half
    elif mode == RTZ:
        up = False
    elif mode == RUP:
        up = neg == 0
    elif mode == RDOWN:
        up = neg != 0
    else:
        up = (random62(seed, idx) >> (62 - s)) < rem
    return code + np.int64(up)


def finish_float(code, neg, p, mode):
    if code > p[P_MAXMAG]:
        toward_zero = mode == RTZ or (mode == RUP and neg != 0) or (mode == RDOWN and neg == 0)
        if toward_zero or p[P_OVERFLOW] == OVERFLOW_SATURATE:
            code = p[P_MAXMAG]
        elif p[P_OVERFLOW] == OVERFLOW_INF:
            code = p[P_INF]
        elif neg != 0:
            return p[P_NAN_NEG]
        else:
            return p[P_NAN_POS]
    if p[P_SIGN_SHIFT] < 0:
        if neg == 0 or (code == 0 and p[P_HAS_ZERO] != 0):
            return code
        return p[P_NEG_UNSIGNED]
    if code == 0 and p[P_NEGZERO] == 0 and p[P_HAS_ZERO] != 0:
        return 0
    # The sign is applied by arithmetic rather than a branch: signs of real data are random.
    return code | (neg << p[P_SIGN_SHIFT])


def encode_one(b, idx, in_m, in_e, p, mode, seed):
    """Code of the input bit pattern `b` (IEEE, `in_e` exponent and `in_m` mantissa bits).
    Returns -1 for NaN input when the format has no NaN code (the host decides what that
    means)."""
    sbit = in_m + in_e
    neg = (b >> sbit) & 1
    mag = b & ((1 << sbit) - 1)
    efield = mag >> in_m
    frac = mag & ((1 << in_m) - 1)
    if efield == (1 << in_e) - 1:
        if frac != 0:
            if neg != 0:
                return p[P_NAN_NEG]
            return p[P_NAN_POS]
        if p[P_INF] >= 0:
            if neg != 0 and p[P_SIGN_SHIFT] >= 0:
                return p[P_INF] | (1 << p[P_SIGN_SHIFT])
            if neg != 0:
                return p[P_NEG_UNSIGNED]
            return p[P_INF]
        code = _OVER
    elif mag == 0:
        if neg != 0:
            return p[P_ZERO_NEG]
        return p[P_ZERO_POS]
    else:
        bias = (1 << (in_e - 1)) - 1
        if efield == 0:
            sig = frac
            e = 1 - bias
            while sig < (1 << in_m):
                sig = sig << 1
                e -= 1
        else:
            sig = frac | (1 << in_m)
            e = efield - bias
        if e >= p[P_E_OVER]:
            code = _OVER
        else:
            emin = p[P_EMIN]
            m = p[P_M]
            eb = e if e > emin else emin
            base = ((eb - emin) << m) - p[P_C]
            code = round_shift(sig, eb - m - e + in_m, base, neg, mode, p[P_TIES_AWAY], seed, idx)
            if code < 0:
                code = 0
    if p[P_IS_INT] != 0:
        limit = p[P_MAXMAG] + neg * (p[P_NEGMAX] - p[P_MAXMAG])
        code = min(code, limit)
        # Two's-complement negation when neg is 1, without a branch: (code ^ -1) + 1 == -code.
        return ((code ^ -neg) + neg) & p[P_MASK]
    return finish_float(code, neg, p, mode)


def quantize_one(b, idx, in_m, in_e, p, mode, seed, table):
    code = encode_one(b, idx, in_m, in_e, p, mode, seed)
    if code < 0:
        return math.nan
    return table[code]


# prange is Python's range outside Numba; the CPU build binds it to numba.prange.
prange = range


def quantize_loop(bits, in_m, in_e, p, mode, seed, table, out):
    for i in prange(bits.size):
        out[i] = quantize_one(int(bits[i]), i, in_m, in_e, p, mode, seed, table)


def encode_loop(bits, in_m, in_e, p, mode, seed, out):
    for i in prange(bits.size):
        out[i] = encode_one(int(bits[i]), i, in_m, in_e, p, mode, seed)


def decode_loop(codes, table, out):
    for i in prange(codes.size):
        out[i] = table[codes[i]]


CPU_LOOPS = (quantize_loop, encode_loop, decode_loop)
SCALAR_FUNCTIONS = (mul32, hash32, random62, round_shift, finish_float, encode_one, quantize_one)


def retarget(functions, jit: Callable[[Callable], Callable], namespace: dict) -> dict[str, Callable]:
    """Compile `functions` with `jit`, each seeing `namespace` (plus the compiled functions
    themselves) as its globals. Returns name -> compiled function."""
    compiled: dict[str, Callable] = {}
    for fn in functions:
        clone = FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__)
        clone.__qualname__, clone.__module__, clone.__doc__ = fn.__qualname__, fn.__module__, fn.__doc__
        compiled[fn.__name__] = namespace[fn.__name__] = jit(clone)
    return compiled


def make_kernels(jit: Callable[[Callable], Callable], **extra_globals) -> dict[str, Callable]:
    """The scalar element functions compiled with `jit` (CPU njit or CUDA device), as a namespace
    dict in which array drivers can be compiled too."""
    namespace = {**globals(), **extra_globals}
    retarget(SCALAR_FUNCTIONS, jit, namespace)
    return namespace
