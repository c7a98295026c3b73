"""Emulated GEMM throughput (MAC/s) against NumPy float32 matmul, taken in one run.

Each row: lowbit.simulator.matmul of two M x K and K x N float32 matrices (normal data) in the
formats and accumulator named, quantization included, against numpy's float32 a @ b measured
beside it. The block rows use the fixed-point-exact block path (one exact partial sum per block);
MXFP8 x NF4 the float64 path, whose scalings by float32 block scales are carried as exact pairs.
The engine rows run the GEMM as a tensor-core instruction over K steps (`matmul(..., engine=...)`).
Run: python benchmarks/bench_matmul.py [--size 1024] [--repeat 3] [--target cpu|cuda]
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from timing import best_seconds  # benchmarks/ is on sys.path when a script runs

from lowbit.simulator import matmul

CASES = (
    ("mxfp4", "mxfp4", "fp32"),
    ("nvfp4", "nvfp4", "fp32"),
    ("float8_e4m3fn", "float8_e4m3fn", "fp16"),  # chunk 1: a rounding after every product
    ("float8_e4m3fn", "float8_e4m3fn", "fp32"),
    ("int8", "int8", "int32"),
    ("mxfp8_e4m3", "nf4", "fp32"),  # float32 block scales: the float64 path (or the general one)
)
# Matrix engines (issue K's targets): (a_format, b_format, arch, instruction, promote_every).
ENGINE_CASES = (
    ("float8_e4m3fn", "float8_e4m3fn", "hopper", "wgmma.m64n256k32.f32.e4m3.e4m3", None),
    ("float8_e4m3fn", "float8_e4m3fn", "hopper", "wgmma.m64n256k32.f32.e4m3.e4m3", 128),
    ("nvfp4", "nvfp4", "rtx_blackwell", "mma.m16n8k64.mxf4nvf4.block16.f32.e2m1.e2m1.f32.ue4m3", None),
    ("mxfp4", "mxfp4", "rtx_blackwell", "mma.m16n8k64.mxf4nvf4.block32.f32.e2m1.e2m1.f32.ue8m0", None),
    ("float16", "float16", "ampere", "mma.m16n8k16.f32.f16.f16.f32", None),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="M = N = K")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--target", default="cpu")
    args = parser.parse_args()
    n = args.size
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    macs = float(n) ** 3
    print(f"M = N = K = {n}, {os.cpu_count()} cores, target {args.target}")
    print("formats | accumulator | emulated GMAC/s | numpy f32 GMAC/s | ratio")
    print("--- | --- | --- | --- | ---")
    for fa, fb, acc in CASES:
        emulated = macs / best_seconds(
            lambda fa=fa, fb=fb, acc=acc: matmul(a, b, fa, fb, acc, target=args.target), args.repeat
        )
        reference = macs / best_seconds(lambda: a @ b, args.repeat)
        print(f"{fa} x {fb} | {acc} | {emulated / 1e9:.3f} | {reference / 1e9:.1f} | {emulated / reference:.4f}")
    for fa, fb, arch, instruction, every in ENGINE_CASES:
        engine = (arch, instruction)
        emulated = macs / best_seconds(
            lambda fa=fa, fb=fb, e=engine, p=every: matmul(a, b, fa, fb, engine=e, promote_every=p, target=args.target),
            args.repeat,
        )
        reference = macs / best_seconds(lambda: a @ b, args.repeat)
        label = f"{arch} {instruction}" + (f", promote every {every}" if every else "")
        print(f"{fa} x {fb} | {label} | {emulated / 1e9:.3f} | {reference / 1e9:.1f} | {emulated / reference:.4f}")


if __name__ == "__main__":
    main()
