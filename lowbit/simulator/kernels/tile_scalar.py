"""Fused NVFP4 kernels for 2-D tiles (`block_rows` x `block`, nvfp4_2d's 16 x 16), read and
written in place in the moved array.

The array the kernels see is the input with its block axis moved last, C-contiguous, viewed as
(matrices * rows, columns): `rows` rows per matrix (the axis before the block axis). A tile is
`tile_rows` consecutive rows of one matrix by `block` consecutive columns; the last tile of a
matrix's rows or columns is cut where they end. Cutting a tile equals the pipeline's zero padding
(`blocks.Layout._tiles`): zeros change neither the tile's amax nor its other elements, and the
padding's values are dropped. Tiles are numbered in C order over (matrix, tile row, tile column),
the order of the pipeline's rows and of `Layout.blocks_shape`.

Each tile takes the steps of `scalar.nv_chunks_loop` (the 1-D NVFP4 kernel): its amax from the
integer bit patterns, the E4M3 scale `nv_dec` and its reciprocal `nv_enc` under the tensor scale,
the elements by `quantize_finite_float`, divided instead where the reciprocal overflows. A tile
holding NaN or Inf is NaN (values and scale). A finite tile whose largest value passes float32's
range saturates to +-FLT_MAX, as `blocks.saturate` does after the pipeline.
"""

from __future__ import annotations

import math

import numpy as np

from .scalar import fast_tuple, float_of_bits, nv_dec, nv_enc, quantize_fast_float, quantize_finite_float

# prange is Python's range outside Numba; the CPU build binds it to numba.prange.
prange = range
# Stands for numba.cuda in the CUDA loops; the CUDA build binds it.
cuda = None

FLT_MAX = 3.4028234663852886e38
# Tile width of nvfp4_2d: a constant-length inner loop, which compiles without loop overhead.
TILE_BLOCK = 16


def tile_amax_bits(xb, r0, r1, c0, c1):
    """Bit pattern of the largest |x| of xb[r0:r1, c0:c1] (the int32 view); NaN and Inf sort above
    every number."""
    abits = np.int32(0)
    for r in range(r0, r1):
        for c in range(c0, c1):
            abits = max(abits, xb[r, c] & np.int32(0x7FFFFFFF))
    return np.int64(abits)


def tile_elements(x, r0, r1, c0, c1, enc, dec, post, q, out):
    """Elements of a finite tile whose values stay in float32's range: (q(x * enc) * dec) * post."""
    for r in range(r0, r1):
        for c in range(c0, c1):
            v = quantize_finite_float(np.float32(x[r, c] * enc), q)
            out[r, c] = np.float32(np.float32(v * dec) * post)


def tile_elements_general(x, r0, r1, c0, c1, enc, dec, post, q, out):
    """Elements of a finite tile on the rare paths: divided by dec * post where enc overflows (as
    `nv_chunks_loop`), and clamped to +-FLT_MAX (as `blocks.saturate`)."""
    div = enc > np.float32(FLT_MAX)
    den = np.float32(dec * post)
    for r in range(r0, r1):
        for c in range(c0, c1):
            if div:
                v = quantize_fast_float(np.float32(0.0) if den == 0 else np.float32(x[r, c] / den), q)
            else:
                v = quantize_finite_float(np.float32(x[r, c] * enc), q)
            y = np.float32(np.float32(v * dec) * post)
            out[r, c] = np.float32(min(max(y, -FLT_MAX), FLT_MAX))


def nv_tile(x, xb, k, r0, r1, c0, c1, elem_max, s_over, post, q, qs, out, scales):
    """Quantize tile k, rows r0:r1 by columns c0:c1 of x (xb: its int32 view), to NVFP4 under the
    tensor scale: s_over = S_enc * (1 / max(element)), post = 1 / S_enc."""
    if c1 - c0 == TILE_BLOCK:
        abits = tile_amax_bits(xb, r0, r1, c0, c0 + TILE_BLOCK)
    else:
        abits = tile_amax_bits(xb, r0, r1, c0, c1)
    if abits >= 0x7F800000:  # NaN or Inf in the tile
        for r in range(r0, r1):
            for c in range(c0, c1):
                out[r, c] = math.nan
        scales[k] = math.nan
        return
    dec = nv_dec(float_of_bits(abits), s_over, qs)
    enc = nv_enc(dec, post)
    scales[k] = dec
    # The largest value of the tile is at most (max(element) * dec) * post: finite in all but
    # tiles of a tensor near FLT_MAX, which take the clamping loop (as saturate clamps).
    top = np.float32(np.float32(elem_max * dec) * post)
    if enc > np.float32(FLT_MAX) or top > np.float32(FLT_MAX):
        tile_elements_general(x, r0, r1, c0, c1, enc, dec, post, q, out)
    elif c1 - c0 == TILE_BLOCK:  # the constant width: inner loops without overhead
        tile_elements(x, r0, r1, c0, c0 + TILE_BLOCK, enc, dec, post, q, out)
    else:
        tile_elements(x, r0, r1, c0, c1, enc, dec, post, q, out)


def group_rows(g, rows, tile_rows):
    """(r0, r1): the rows of tile row g (over all matrices) in the (matrices * rows, columns) array."""
    row_tiles = (rows + tile_rows - 1) // tile_rows
    mat = g // row_tiles
    i = g - mat * row_tiles
    return mat * rows + i * tile_rows, mat * rows + min((i + 1) * tile_rows, rows)


def tile_bounds(k, rows, tile_rows, block, n_cols):
    """(r0, r1, c0, c1) of tile k in the (matrices * rows, n_cols) array."""
    col_tiles = (n_cols + block - 1) // block
    r0, r1 = group_rows(k // col_tiles, rows, tile_rows)
    c0 = (k % col_tiles) * block
    return r0, r1, c0, min(c0 + block, n_cols)


def tile_scale_constants(elem_max, s_enc):
    """(s_over, post) of the tensor scale: S_enc * (1 / max(element)) and 1 / S_enc, as `absmax_block`."""
    post = np.float32(np.float32(1.0) / s_enc)
    s_over = np.float32(s_enc * np.float32(np.float32(1.0) / elem_max))
    return s_over, post


def column_max_bits(xb, r0, r1, colmax):
    """colmax[c] = the bit pattern of the largest |x| of column c over rows r0:r1 (int32 view)."""
    for c in range(colmax.size):
        colmax[c] = 0
    for r in range(r0, r1):
        for c in range(colmax.size):
            colmax[c] = max(colmax[c], xb[r, c] & np.int32(0x7FFFFFFF))


def tile_max_bits(colmax, block, tbits, base):
    """tbits[base + j] = the largest of colmax over the columns of tile j (of block columns)."""
    n_cols = colmax.size
    for j in range((n_cols + block - 1) // block):
        m = np.int32(0)
        for c in range(j * block, min(j * block + block, n_cols)):
            m = max(m, colmax[c])
        tbits[base + j] = m


def usual_tile(abits, dec, enc, elem_max, post):
    """Whether a tile takes the common path: finite, a float32 reciprocal of its scale, and values
    that stay in float32's range (else `nv_tile`'s general steps)."""
    fmax = np.float32(FLT_MAX)
    return abits < 0x7F800000 and enc <= fmax and np.float32(np.float32(elem_max * dec) * post) <= fmax


def group_elements(x, r0, r1, encrow, decrow, post, q, out):
    """Elements of rows r0:r1 with the scale of each column's tile, (q(x * enc) * dec) * post: a
    loop along each row, which vectorises."""
    for r in range(r0, r1):
        for c in range(encrow.size):
            v = quantize_finite_float(np.float32(x[r, c] * encrow[c]), q)
            out[r, c] = np.float32(np.float32(v * decrow[c]) * post)


# Elements per chunk of tile rows on the CPU: a chunk's data stays in cache between its passes.
TILE_CHUNK = 1 << 16


def nv_tiles_loop(x, xb, rows, tile_rows, block, elem_max, s_enc, f, fs, out, scales):
    """NVFP4 over the tiles of x on the CPU, a chunk of tile rows (about TILE_CHUNK elements) at
    a time, in passes along the rows, which vectorise (a loop over a tile's 16 x 16 vectorises
    across its rows, with scatters, at half the speed): the column maxima of each tile row, then
    every tile's amax and scales in loops over the chunk's tiles, then the elements with each
    column's scale. Tiles off the common path (`usual_tile`) are done again by `nv_tile`."""
    q = fast_tuple(f)
    qs = fast_tuple(fs)
    s_over, post = tile_scale_constants(elem_max, s_enc)
    n_cols = x.shape[1]
    col_tiles = (n_cols + block - 1) // block
    groups = scales.size // col_tiles
    per = max(1, TILE_CHUNK // (tile_rows * n_cols))
    for ch in prange((groups + per - 1) // per):
        g0 = ch * per
        g1 = min(g0 + per, groups)
        nt = (g1 - g0) * col_tiles
        colmax = np.empty(n_cols, np.int32)
        tbits = np.empty(nt, np.int32)
        dec = np.empty(nt, np.float32)
        enc = np.empty(nt, np.float32)
        decrow = np.empty(n_cols, np.float32)
        encrow = np.empty(n_cols, np.float32)
        for g in range(g0, g1):
            r0, r1 = group_rows(g, rows, tile_rows)
            column_max_bits(xb, r0, r1, colmax)
            tile_max_bits(colmax, block, tbits, (g - g0) * col_tiles)
        for t in range(nt):  # the scales in loops over tiles, which vectorise
            b = np.int64(tbits[t])
            dec[t] = nv_dec(float_of_bits(b if b < 0x7F800000 else 0), s_over, qs)
        for t in range(nt):
            enc[t] = nv_enc(dec[t], post)
        for g in range(g0, g1):
            unusual = False
            for j in range(col_tiles):
                t = (g - g0) * col_tiles + j
                usual = usual_tile(np.int64(tbits[t]), dec[t], enc[t], elem_max, post)
                unusual = unusual or not usual
                scales[g * col_tiles + j] = dec[t]
                for c in range(j * block, min(j * block + block, n_cols)):
                    decrow[c] = dec[t] if usual else np.float32(0.0)
                    encrow[c] = enc[t] if usual else np.float32(0.0)
            r0, r1 = group_rows(g, rows, tile_rows)
            group_elements(x, r0, r1, encrow, decrow, post, q, out)
            if unusual:  # rare: NaN or Inf, a scale without a float32 reciprocal, values past FLT_MAX
                for j in range(col_tiles):
                    t = (g - g0) * col_tiles + j
                    if not usual_tile(np.int64(tbits[t]), dec[t], enc[t], elem_max, post):
                        c0 = j * block
                        nv_tile(x, xb, g * col_tiles + j, r0, r1, c0, min(c0 + block, n_cols), elem_max, s_over,
                                post, q, qs, out, scales)  # fmt: skip


def nv_tiles_grid(x, xb, rows, tile_rows, block, elem_max, s_enc, f, fs, out, scales):
    """A thread per tile (grid-stride)."""
    q = fast_tuple(f)
    qs = fast_tuple(fs)
    s_over, post = tile_scale_constants(elem_max, s_enc)
    n_cols = x.shape[1]
    for k in range(cuda.grid(1), scales.size, cuda.gridsize(1)):
        r0, r1, c0, c1 = tile_bounds(k, rows, tile_rows, block, n_cols)
        nv_tile(x, xb, k, r0, r1, c0, c1, elem_max, s_over, post, q, qs, out, scales)


SCALAR_FUNCTIONS = (
    tile_amax_bits,
    tile_elements,
    tile_elements_general,
    nv_tile,
    group_rows,
    tile_bounds,
    tile_scale_constants,
    column_max_bits,
    tile_max_bits,
    usual_tile,
    group_elements,
)
CPU_LOOPS = (nv_tiles_loop,)
CUDA_LOOPS = (nv_tiles_grid,)
