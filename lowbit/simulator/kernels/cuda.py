"""CUDA array drivers: the same scalar kernels in grid-stride loops, compiled when a CUDA target
is first asked for; with NUMBA_ENABLE_CUDASIM=1 they run in Numba's CUDA simulator.

This module loads without numba.cuda: the loops name `cuda`, which the build binds to numba.cuda
(through lowbit.lazy) in the namespace they are compiled in, as the CPU build binds `prange`."""

from __future__ import annotations

import functools
from types import SimpleNamespace

from numba import float64

from ...lazy import numba_cuda
from . import dot_scalar, engine_scalar
from .dot_scalar import STACK, dot_one, per_product_one
from .engine_scalar import fdpa_one, gst_one
from .jit import cuda_device, cuda_kernel
from .modules import KERNEL_MODULES, module_namespace
from .scalar import (
    absmax_block,
    encode_one,
    fast_tuple,
    finite_amax_row,
    fwht_row,
    make_kernels,
    mx_block,
    quantize_fast,
    quantize_one,
    random62,
    retarget,
)

THREADS_PER_BLOCK = 256
MAX_BLOCKS = 4096

# Stands for numba.cuda in the source; each build binds the real module (see the docstring).
cuda = None


def quantize_loop(bits, in_m, in_e, p, mode, seed, sr, rbits, table, out):
    for i in range(cuda.grid(1), bits.size, cuda.gridsize(1)):
        out[i] = quantize_one(int(bits[i]), i, in_m, in_e, p, mode, seed, sr, rbits, table)


def encode_loop(bits, in_m, in_e, p, mode, seed, sr, rbits, out):
    for i in range(cuda.grid(1), bits.size, cuda.gridsize(1)):
        out[i] = encode_one(int(bits[i]), i, in_m, in_e, p, mode, seed, sr, rbits)


def draw_loop(seed, sr, out):
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = random62(seed, i) >> (62 - sr)


def quantize_fast_loop(x, f, out):
    q = fast_tuple(f)
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        out[i] = quantize_fast(x[i], q)


def fwht_loop(buf, h):
    for r in range(cuda.grid(1), buf.size // h, cuda.gridsize(1)):
        fwht_row(buf, r * h, h)


def mx_loop(x, xb, rule, emax, mbits, max_pos, step, f, is_int, out, scales):
    q = fast_tuple(f)
    for k in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        mx_block(x, xb, k, rule, emax, mbits, max_pos, step, q, is_int, out, scales)


def absmax_loop(x, xb, level, kind, divide, elem_max, smin, smax, s_enc, f, fs, mids, table, out, scales):
    for k in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        absmax_block(x, xb, k, level, kind, divide, elem_max, smin, smax, s_enc, f, fs, mids, table, out, scales)


def finite_amax_loop(xb, out):
    for k in range(cuda.grid(1), xb.shape[0], cuda.gridsize(1)):
        out[k] = finite_amax_row(xb, k)


def decode_loop(codes, table, out):
    for i in range(cuda.grid(1), codes.size, cuda.gridsize(1)):
        out[i] = table[codes[i]]


LOOPS = (
    quantize_loop,
    encode_loop,
    draw_loop,
    decode_loop,
    quantize_fast_loop,
    fwht_loop,
    mx_loop,
    absmax_loop,
    finite_amax_loop,
)


@functools.cache
def cuda_drivers() -> SimpleNamespace:
    """The drivers compiled for CUDA (built on first use)."""
    base = make_kernels(cuda_device)
    namespace = {**base, **{f.__name__: f for f in LOOPS}}
    namespace["cuda"] = numba_cuda()
    kernels = {name.removesuffix("_loop"): fn for name, fn in retarget(LOOPS, cuda_kernel, namespace).items()}
    for module in KERNEL_MODULES:
        ns = module_namespace(module, base, cuda=numba_cuda())
        retarget(module.SCALAR_FUNCTIONS, cuda_device, ns)
        grids = retarget(module.CUDA_LOOPS, cuda_kernel, ns)
        kernels.update({name.removesuffix("_grid"): fn for name, fn in grids.items()})
    return SimpleNamespace(**kernels)


def launch(kernel, n: int, stream=0):
    """`kernel` configured for a grid-stride loop over n elements, on `stream` (0: the default)."""
    blocks = max(1, min(MAX_BLOCKS, -(-n // THREADS_PER_BLOCK)))
    return kernel[blocks, THREADS_PER_BLOCK, stream]


def dot_loop(ea, sa, blk_a, eb, sb, blk_b, chunk, q, trunc, order, tscale, out, flags):
    """A thread per output (grid-stride), each with its own pairwise stack."""
    stack = cuda.local.array(STACK, float64)
    cols = out.shape[1]
    for t in range(cuda.grid(1), out.shape[0] * cols, cuda.gridsize(1)):
        i = t // cols
        j = t - i * cols
        v, bad = dot_one(ea, sa, blk_a, eb, sb, blk_b, i, j, chunk, q, trunc, order, tscale, stack)
        out[i, j] = v
        flags[i, j] = bad


def dot_per_product_loop(ea, eb, q, out):
    """A thread per output (grid-stride), accumulated one product at a time (chunk 1) where the host
    has proved the per-product conditions (`dot_scalar.rounded_sum_step`; eb laid out (N, K))."""
    cols = out.shape[1]
    for t in range(cuda.grid(1), out.shape[0] * cols, cuda.gridsize(1)):
        i = t // cols
        j = t - i * cols
        out[i, j] = per_product_one(ea, eb, i, j, q)


DOT_LOOPS = (dot_loop, dot_per_product_loop)


@functools.cache
def cuda_dot_drivers() -> SimpleNamespace:
    """The dot-product drivers compiled for CUDA (built on first use)."""
    loops = {f.__name__: f for f in DOT_LOOPS}  # in place of the CPU loops of the same names
    namespace = dot_scalar.make_dot_kernels(cuda_device, cuda=numba_cuda(), float64=float64, **loops)
    kernels = retarget(DOT_LOOPS, cuda_kernel, namespace)
    return SimpleNamespace(**{name.removesuffix("_loop"): fn for name, fn in kernels.items()})


def fdpa_loop(a, ea, b, eb, xa, xb, k0, k1, cfg, out):
    """A thread per output (grid-stride): a T_FDPA / ST_FDPA chain (b, eb laid out (K, N))."""
    cols = out.shape[1]
    for t in range(cuda.grid(1), out.shape[0] * cols, cuda.gridsize(1)):
        i = t // cols
        j = t - i * cols
        out[i, j] = fdpa_one(a, ea, b, eb, xa, xb, k0, k1, cfg, i, j)


def gst_loop(a, nza, b, nzb, sa, xa, sb, xb, k0, k1, cfg, out):
    """A thread per output (grid-stride): a GST_FDPA chain (b, nzb laid out (K, N))."""
    cols = out.shape[1]
    for t in range(cuda.grid(1), out.shape[0] * cols, cuda.gridsize(1)):
        i = t // cols
        j = t - i * cols
        out[i, j] = gst_one(a, nza, b, nzb, sa, xa, sb, xb, k0, k1, cfg, i, j)


ENGINE_LOOPS = (fdpa_loop, gst_loop)


@functools.cache
def cuda_engine_drivers() -> SimpleNamespace:
    """The matrix-engine GEMM drivers compiled for CUDA (built on first use)."""
    loops = {f.__name__: f for f in ENGINE_LOOPS}  # in place of the CPU loops of the same names
    namespace = engine_scalar.make_engine_kernels(cuda_device, cuda=numba_cuda(), **loops)
    kernels = retarget(ENGINE_LOOPS, cuda_kernel, namespace)
    return SimpleNamespace(**{name.removesuffix("_loop"): fn for name, fn in kernels.items()})
