"""CUDA quantize throughput against device copy bandwidth, and emulated GEMM on the device, in one run.

Needs a CUDA GPU (not the simulator); without one it says so and exits. Each quantize row: lowbit.quantize
of a 2^26-element float32 device array (elements in and out on the device) against a device-to-device copy of
the same array measured beside it. The GEMM rows (matrix engines too): lowbit.simulator.matmul with
target='cuda' against a float32 matmul on the device (CuPy when installed, else the host's NumPy).
Run: python benchmarks/bench_cuda.py [--n-log2 26] [--size 1024] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from timing import best_seconds  # benchmarks/ is on sys.path when a script runs

import lowbit
from lowbit.simulator import matmul

ELEMENT_FORMATS = ("float8_e4m3fn", "float8_e5m2", "float4_e2m1fn", "int8", "bfloat16")
BLOCK_FORMATS = ("mxfp4", "mxfp8_e4m3", "nvfp4", "nf4")
ENGINES = (  # matrix-engine GEMMs (matmul(..., engine=...)) on the device
    ("float8_e4m3fn", "hopper", "wgmma.m64n256k32.f32.e4m3.e4m3"),
    ("nvfp4", "rtx_blackwell", "mma.m16n8k64.mxf4nvf4.block16.f32.e2m1.e2m1.f32.ue4m3"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-log2", type=int, default=26)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        print("bench_cuda: the CUDA simulator is on; set NUMBA_ENABLE_CUDASIM=0 on a machine with a GPU")
        return
    from numba import cuda

    if not cuda.is_available():
        print("bench_cuda: no CUDA device; nothing measured")
        return
    n = 1 << args.n_log2
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    d_x = cuda.to_device(x)
    d_copy = cuda.device_array_like(d_x)

    def synced(fn):
        def run():
            fn()
            cuda.synchronize()

        return run

    copy = n / best_seconds(synced(lambda: d_copy.copy_to_device(d_x)), args.repeat)
    print(f"device: {cuda.get_current_device().name.decode()}, n = 2^{args.n_log2} float32")
    print("format | quantize G/s | device copy G/s | q/copy")
    print("--- | --- | --- | ---")
    for name in ELEMENT_FORMATS:
        q = n / best_seconds(synced(lambda name=name: lowbit.quantize(d_x, name)), args.repeat)
        print(f"{name} | {q / 1e9:.2f} | {copy / 1e9:.2f} | {q / copy:.3f}")
    for name in BLOCK_FORMATS:  # block formats compute scales on the host: host arrays in and out
        q = n / best_seconds(lambda name=name: lowbit.quantize(x, name, target="cuda"), args.repeat)
        print(f"{name} (host in/out) | {q / 1e9:.2f} | {copy / 1e9:.2f} | {q / copy:.3f}")
    m = args.size
    rng = np.random.default_rng(1)
    a = rng.standard_normal((m, m)).astype(np.float32)
    b = rng.standard_normal((m, m)).astype(np.float32)
    try:
        import cupy

        da, db = cupy.asarray(a), cupy.asarray(b)
        ref = best_seconds(lambda: (da @ db, cupy.cuda.Device().synchronize()), args.repeat)
        where = "device (CuPy)"
    except ImportError:
        ref = best_seconds(lambda: a @ b, args.repeat)
        where = "host (NumPy)"
    print(f"\nGEMM M = N = K = {m}; float32 reference on the {where}")
    print("formats | accumulator | emulated GMAC/s | f32 GMAC/s | ratio")
    print("--- | --- | --- | --- | ---")
    for fa, acc in (("mxfp4", "fp32"), ("nvfp4", "fp32"), ("float8_e4m3fn", "fp16"), ("int8", "int32")):
        t = best_seconds(lambda fa=fa, acc=acc: matmul(a, b, fa, fa, acc, target="cuda"), args.repeat)
        print(f"{fa} x {fa} | {acc} | {m**3 / t / 1e9:.3f} | {m**3 / ref / 1e9:.1f} | {ref / t:.4f}")
    for fa, arch, instruction in ENGINES:
        engine = (arch, instruction)
        t = best_seconds(lambda fa=fa, e=engine: matmul(a, b, fa, fa, engine=e, target="cuda"), args.repeat)
        print(f"{fa} x {fa} | {arch} {instruction} | {m**3 / t / 1e9:.3f} | {m**3 / ref / 1e9:.1f} | {ref / t:.4f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
