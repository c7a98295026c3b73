"""Block-format quantize throughput against memory-copy bandwidth, taken in one run.

Each row: lowbit.quantize of a 2^24-element float32 array (normal data, per-block magnitudes)
to the format, against np.copyto of the same array measured beside it.
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
    out = np.empty_like(x)
    print(f"n = 2^{args.n_log2} float32, {os.cpu_count()} cores")
    print("format | quantize G/s | copy G/s | q/copy")
    print("--- | --- | --- | ---")
    for name in FORMATS:
        q = n / best_seconds(lambda name=name: lowbit.quantize(x, name), args.repeat)
        copy = n / best_seconds(lambda: np.copyto(out, x), args.repeat)
        print(f"{name} | {q / 1e9:.3f} | {copy / 1e9:.2f} | {q / copy:.3f}")


if __name__ == "__main__":
    main()
