"""Block-format quantize throughput against memory-copy bandwidth, taken in one run.

Each row: lowbit.quantize of 2^24 float32 values (normal data, per-block magnitudes), shaped as
a square matrix with blocks (and per-channel scales) along its rows, to the format, against
np.copyto of the same array into an existing one, measured beside it.
Two quantize columns: into a new array (what `quantize(x, fmt)` returns; the operating system
zero-fills its pages on first touch) and into an existing one (`quantize(x, fmt, out=buf)`,
the like-for-like comparison with np.copyto).
Run: python benchmarks/bench_blocks.py [--n-log2 24] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from timing import best_seconds  # benchmarks/ is on sys.path when a script runs

import lowbit

FORMATS = (
    "mxfp4",
    "mxfp8_e4m3",
    "mxint8",
    "nvfp4",
    "nvfp4_single",
    "nvfp4_2d",
    "nvfp4_4over6",
    "mx6",
    "nf4",
    "af4",
    "int4_g128",
    "afpq_nf4_g128",
    "bitnet_b158",
    "paretoq_ternary",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-log2", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = 1 << args.n_log2
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(n) * np.exp2(rng.integers(-4, 4, n // 1024)).repeat(1024)).astype(np.float32)
    side = 1 << (args.n_log2 // 2)
    x = x.reshape(-1, side)  # a weight matrix: per-channel formats get one scale per row
    out = np.empty_like(x)
    print(f"n = 2^{args.n_log2} float32, {os.cpu_count()} cores")
    print("format | new array G/s | into out G/s | copy G/s | new/copy | out/copy")
    print("--- | --- | --- | --- | --- | ---")
    for name in FORMATS:
        fresh = n / best_seconds(lambda name=name: lowbit.quantize(x, name), args.repeat)
        into = n / best_seconds(lambda name=name: lowbit.quantize(x, name, out=out), args.repeat)
        copy = n / best_seconds(lambda: np.copyto(out, x), args.repeat)
        print(
            f"{name} | {fresh / 1e9:.3f} | {into / 1e9:.3f} | {copy / 1e9:.2f} | {fresh / copy:.3f} | {into / copy:.3f}"
        )


if __name__ == "__main__":
    main()
