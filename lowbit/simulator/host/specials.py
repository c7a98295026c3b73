"""IEEE special values (NaN, +Inf, -Inf) of quantized GEMM operands, and the outputs they reach.

The exact emulation (`gemm`) sums finite values in fixed point and error-free pairs, which cannot
carry a NaN or an Inf. So `gemm` finds the specials of each operand here, runs the emulation with
them zeroed, and then sets every output that a special reaches to the value IEEE arithmetic gives
it (README "GEMM emulation", "NaN and Inf"):
  - NaN when a NaN is involved, or Inf * 0, or Inf products of both signs;
  - else the Inf of the Inf products' sign.
An output a special reaches is never finite: a NaN makes it NaN, and an Inf times the other
operand's value is NaN (times 0 or NaN) or Inf.
"""

from __future__ import annotations

import numpy as np

# Values per mask slice: the 0/1 masks are float32, so a slice holds 16 MiB per mask.
SLICE_VALUES = 1 << 22


def finite(elements: np.ndarray, scales: np.ndarray) -> bool:
    """Whether every element and block scale of an operand is finite (one pass over it)."""
    return bool(np.isfinite(elements).all() and np.isfinite(scales).all())


def classes(elements: np.ndarray, scales: np.ndarray, block: int, tensor: float) -> np.ndarray:
    """The class of each dequantized operand value as a float64 (rows, K) array: NaN, +Inf, -Inf,
    +1, -1 or 0, the IEEE product of the signs of element, block scale and tensor scale."""
    k = elements.shape[1]
    with np.errstate(invalid="ignore"):  # Inf * 0 is NaN on purpose
        e = np.where(np.isinf(elements), elements, np.sign(elements))
        s = np.where(np.isinf(scales), scales, np.sign(scales))
        s = np.repeat(s, max(block, 1), axis=1)[:, :k] if k else s[:, :0]
        return e * s * np.sign(tensor)


def zeroed(values: np.ndarray) -> np.ndarray:
    """values with NaN and Inf replaced by 0 (for the finite emulation)."""
    return np.where(np.isfinite(values), values, 0.0)


def _masks(rep: np.ndarray) -> dict[str, np.ndarray]:
    """0/1 float32 masks of a slice of classes (rows, K), and its rows holding a NaN."""
    f32 = np.float32
    inf = np.isinf(rep)
    with np.errstate(invalid="ignore"):
        pos, neg = rep > 0, rep < 0
    return {
        "nan": np.isnan(rep).any(axis=1),
        "zero": (rep == 0).astype(f32),
        "inf": inf.astype(f32),
        "pos": pos.astype(f32),  # +1 and +Inf
        "neg": neg.astype(f32),
        "pinf": (inf & pos).astype(f32),
        "ninf": (inf & neg).astype(f32),
        "fpos": (pos & ~inf).astype(f32),  # finite positive
        "fneg": (neg & ~inf).astype(f32),
    }


def _outputs(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> np.ndarray:
    """IEEE values of the outputs of slices a (m, K) and b (n, K), each reached by a special.
    Products of 0/1 masks count matching lanes; counts are positive sums, so `> 0` is exact."""
    nan = a["nan"][:, None] | b["nan"][None, :]
    nan |= (a["inf"] @ b["zero"].T > 0) | (a["zero"] @ b["inf"].T > 0)
    plus = a["pinf"] @ b["pos"].T + a["ninf"] @ b["neg"].T + a["fpos"] @ b["pinf"].T + a["fneg"] @ b["ninf"].T
    minus = a["pinf"] @ b["neg"].T + a["ninf"] @ b["pos"].T + a["fpos"] @ b["ninf"].T + a["fneg"] @ b["pinf"].T
    nan |= (plus > 0) & (minus > 0)
    return np.where(nan, np.nan, np.where(plus > 0, np.inf, -np.inf))


def special_outputs(ra: np.ndarray, rb: np.ndarray) -> np.ndarray:
    """IEEE values (m, n) of the outputs of class arrays ra (m, K) and rb (n, K), every output
    reached by a special; in slices, so the masks stay within SLICE_VALUES values each."""
    m, k = ra.shape
    n = rb.shape[0]
    out = np.empty((m, n), np.float64)
    step = max(1, SLICE_VALUES // max(k, 1))
    for i0 in range(0, m, step):
        ma = _masks(ra[i0 : i0 + step])
        for j0 in range(0, n, step):
            out[i0 : i0 + step, j0 : j0 + step] = _outputs(ma, _masks(rb[j0 : j0 + step]))
    return out


def overwrite(out: np.ndarray, ra: np.ndarray, rb: np.ndarray, alpha: float) -> None:
    """Sets every output of `out` (M, N) that a special of the classes ra (M, K) or rb (N, K)
    reaches to its IEEE value times the epilogue's alpha (IEEE too: Inf * 0 is NaN)."""
    rows = np.nonzero(~np.isfinite(ra).all(axis=1))[0]
    cols = np.nonzero(~np.isfinite(rb).all(axis=1))[0]
    with np.errstate(invalid="ignore"):
        if rows.size:
            out[rows, :] = special_outputs(ra[rows], rb) * alpha
        if cols.size:
            out[:, cols] = special_outputs(ra, rb[cols]) * alpha
