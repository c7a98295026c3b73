"""lowbit.torch.quantize throughput against the NumPy path, torchao's MX path and copy bandwidth, in one run.

CPU rows: a size x size float32 tensor (default 4096 x 4096; normal data with one magnitude per
1024 values), blocks along its rows. Columns, in values per second:
- torch: lowbit.torch.quantize(t, fmt); NumPy: lowbit.quantize on t's NumPy view (the same memory),
  their ratio (issue 17's target: torch within 10% of NumPy, i.e. torch/NumPy >= 0.9);
- torchao: torchao.prototype.mx_formats' CPU path, quantize to MX then dequantize (to_mx, then
  to_dtype to float32), the same fake quantization; torch/torchao (target >= 20) and whether the
  two give the same bits;
- copy: t copied into an existing tensor of its size (Tensor.copy_), torch/copy.
The two lowbit paths are timed alternately, best of --repeat each, so that load on the machine
hits both alike.
GPU rows, when torch sees a CUDA device: lowbit.torch.quantize on a 2^--gpu-n-log2 float32 CUDA
tensor (in and out on the device) against a device-to-device copy (Tensor.clone, which allocates
its result as quantize does), and a check that CUDA results equal the CPU's bit for bit.
Run: python benchmarks/bench_torch.py [--size 4096] [--repeat 3] [--gpu-n-log2 26]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import numpy as np
from timing import best_seconds  # benchmarks/ is on sys.path when a script runs

import lowbit

CPU_FORMATS = ("float8_e4m3fn", "mxfp4", "mxfp8_e4m3", "nvfp4")
GPU_FORMATS = ("float8_e4m3fn", "mxfp4", "nvfp4")
CHECK_FORMATS = ("float8_e4m3fn", "float8_e5m2", "float4_e2m1fn", "int8", "bfloat16", "mxfp4", "mxfp8_e4m3", "nvfp4")
# torchao's element dtype for each lowbit MX format (attribute names on torch)
TORCHAO_DTYPES = {"mxfp4": "float4_e2m1fn_x2", "mxfp8_e4m3": "float8_e4m3fn"}
MX_BLOCK = 32  # OCP MX block size (OCP Microscaling Formats v1.0, section 5)


def best_alternating(fns: dict, repeat: int) -> dict:
    """Fastest seconds of each fn over `repeat` rounds that run every fn once, after one warm-up
    round: alternating spreads a busy machine's noise over all of them alike."""
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[key] = min(best[key], time.perf_counter() - t0)
    return best


def cpu_data(size: int):
    """A size x size float32 tensor: normal values, one magnitude (2^-4 .. 2^3) per 1024 of them."""
    import torch

    n = size * size
    rng = np.random.default_rng(0)
    mags = np.exp2(rng.integers(-4, 4, -(-n // 1024))).repeat(1024)[:n]
    x = (rng.standard_normal(n) * mags).astype(np.float32).reshape(size, size)
    return torch.from_numpy(x)


def torchao_mx():
    """torchao's MX fake quantization (quantize, then dequantize to float32), or the reason it is missing."""
    # torchao logs warnings for its optional CUDA extensions on import; this table does not use them
    for name in ("torchao", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import torch
        from torchao.prototype.mx_formats.mx_tensor import to_dtype, to_mx
    except ImportError as err:
        return f"torchao not installed ({err})"

    def fake_quantize(t, name: str):
        dtype = getattr(torch, TORCHAO_DTYPES[name])
        scale, data = to_mx(t, dtype, MX_BLOCK)
        return to_dtype(data, scale, dtype, MX_BLOCK, torch.float32)

    return fake_quantize


def cpu_table(size: int, repeat: int) -> None:
    import torch

    import lowbit.torch as lt

    t = cpu_data(size)
    x = t.numpy()  # the same memory
    n = t.numel()
    sink = torch.empty_like(t)
    copy = n / best_seconds(lambda: sink.copy_(t), repeat)
    ao = torchao_mx()
    threads = torch.get_num_threads()
    print(f"CPU: {size} x {size} float32, {os.cpu_count()} cores, torch {torch.__version__} on {threads} threads")
    print(
        "format | torch G/s | NumPy G/s | torch/NumPy | torchao G/s | torch/torchao | same bits | copy G/s | torch/copy"
    )
    print("--- | --- | --- | --- | --- | --- | --- | --- | ---")
    for name in CPU_FORMATS:
        s = best_alternating(
            {"torch": lambda name=name: lt.quantize(t, name), "numpy": lambda name=name: lowbit.quantize(x, name)},
            repeat,
        )
        tq, nq = n / s["torch"], n / s["numpy"]
        ao_cols = "n/a | n/a | n/a"
        if isinstance(ao, str):
            ao_cols = f"{ao} | n/a | n/a"
        elif name in TORCHAO_DTYPES:
            aq = n / best_seconds(lambda name=name: ao(t, name), max(1, repeat // 2))
            same = torch.equal(ao(t, name).view(torch.int32), lt.quantize(t, name).view(torch.int32))
            ao_cols = f"{aq / 1e9:.4f} | {tq / aq:.1f} | {'yes' if same else 'no'}"
        print(
            f"{name} | {tq / 1e9:.3f} | {nq / 1e9:.3f} | {tq / nq:.3f} | {ao_cols} | {copy / 1e9:.2f} | {tq / copy:.3f}"
        )


def gpu_table(n_log2: int, repeat: int) -> bool:
    """The GPU rows; False when a CUDA result differs from the CPU's."""
    import torch

    import lowbit.torch as lt

    if not torch.cuda.is_available():
        print("\nGPU: torch sees no CUDA device; GPU rows skipped")
        return True
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        print("\nGPU: the CUDA simulator is on (NUMBA_ENABLE_CUDASIM=1); set it to 0 to measure the device")
        return True
    n = 1 << n_log2
    t = torch.randn(n, generator=torch.Generator().manual_seed(0)).cuda()

    def synced(fn):
        def run():
            fn()
            torch.cuda.synchronize()

        return run

    copy = n / best_seconds(synced(lambda: t.clone()), repeat)
    print(f"\nGPU: {torch.cuda.get_device_name()}, n = 2^{n_log2} float32, CUDA tensors in and out")
    print("format | quantize G/s | device copy G/s | q/copy")
    print("--- | --- | --- | ---")
    for name in GPU_FORMATS:
        q = n / best_seconds(synced(lambda name=name: lt.quantize(t, name)), repeat)
        print(f"{name} | {q / 1e9:.2f} | {copy / 1e9:.2f} | {q / copy:.3f}")
    return check_bits(t[: 1 << 20].reshape(-1, 1024))


def check_bits(t) -> bool:
    """CUDA results against the CPU's, bit for bit, on normal data and on every edge value placed in it."""
    import torch

    import lowbit.torch as lt

    edges = torch.tensor([0.0, -0.0, 3.4e38, -3.4e38, 1e-40, -1e-45, float("inf"), -float("inf"), float("nan"), 0.5])
    t = t.clone()
    t[0, : edges.numel()] = edges.to(t.device)
    host = t.cpu()
    ok = True
    print("\nformat | CUDA == CPU (bits)")
    print("--- | ---")
    for name in CHECK_FORMATS:
        same = torch.equal(lt.quantize(t, name).cpu().view(torch.int32), lt.quantize(host, name).view(torch.int32))
        print(f"{name} | {'yes' if same else 'NO'}")
        ok = ok and same
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--gpu-n-log2", type=int, default=26)
    parser.add_argument("--skip-cpu", action="store_true", help="only the GPU rows (scripts/gpu_check.sh)")
    args = parser.parse_args()
    try:
        import torch  # noqa: F401
    except ImportError as err:
        print(f"bench_torch: torch is not installed ({err}); install lowbit[torch]")
        return
    if not args.skip_cpu:
        cpu_table(args.size, args.repeat)
    if not gpu_table(args.gpu_n_log2, args.repeat):
        sys.exit("bench_torch: CUDA results differ from the CPU's")


if __name__ == "__main__":
    main()
