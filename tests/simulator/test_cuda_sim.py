"""The CUDA kernels give the CPU kernels' bits. In CI they run in Numba's CUDA simulator
(NUMBA_ENABLE_CUDASIM=1, set in conftest); on a machine with a GPU, set it to 0 to run them there."""

import numpy as np
import pytest

import lowbit

from ..helpers import CUSTOM_FORMATS, grid_inputs, random_f32

cuda = pytest.importorskip("numba.cuda")
if not cuda.is_available():
    pytest.skip("no CUDA device and the CUDA simulator is off", allow_module_level=True)

FORMATS = ["float8_e4m3fn", "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn", "bfloat16", "int4", "uint8"]
MODES = ["rne", "rtz", "rna", "rup", "rdown", "stochastic"]


def _inputs(fmt) -> np.ndarray:
    g = grid_inputs(lowbit.get_format(fmt))
    x = np.concatenate([g[:: max(1, g.size // 300)], random_f32(200, seed=5), np.array([np.nan, -np.nan, 0.0, -0.0])])
    return x.astype(np.float32)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fmt", FORMATS + [CUSTOM_FORMATS["ue5m3_fn"], CUSTOM_FORMATS["e4m2_nosub"]])
def test_cuda_equals_cpu(fmt, mode):
    x = _inputs(fmt)
    cpu = lowbit.quantize(x, fmt, rounding=mode, seed=11, target="cpu")
    gpu = lowbit.quantize(x, fmt, rounding=mode, seed=11, target="cuda")
    np.testing.assert_array_equal(cpu.view(np.uint32), gpu.view(np.uint32))
    nan = "zero"
    np.testing.assert_array_equal(
        lowbit.encode(x, fmt, rounding=mode, seed=11, nan=nan, target="cpu").codes,
        lowbit.encode(x, fmt, rounding=mode, seed=11, nan=nan, target="cuda").codes,
    )


def test_cuda_float64_and_decode():
    x = np.concatenate([_inputs("float8_e4m3fn").astype(np.float64), [17.0 + 2.0**-40]])
    np.testing.assert_array_equal(lowbit.quantize(x, "fp8_e4m3", target="cuda"), lowbit.quantize(x, "fp8_e4m3"))
    codes = np.arange(256)
    np.testing.assert_array_equal(
        lowbit.decode(codes, "float8_e5m2", target="cuda").view(np.uint32),
        lowbit.decode(codes, "float8_e5m2").view(np.uint32),
    )


def test_device_array_in_device_array_out():
    x = _inputs("float4_e2m1fn")
    d = cuda.to_device(x)
    out = lowbit.quantize(d, "fp4")
    assert hasattr(out, "copy_to_host")
    np.testing.assert_array_equal(out.copy_to_host(), lowbit.quantize(x, "fp4"))


@pytest.mark.parametrize("mode", ["rne", "rtz"])  # the fast driver and the general one
def test_device_array_on_a_stream(mode):
    # lowbit.torch passes torch's current stream; every copy and launch then goes on it
    x = _inputs("float8_e4m3fn")
    stream = cuda.stream()
    out = lowbit.quantize(cuda.to_device(x, stream=stream), "float8_e4m3fn", rounding=mode, stream=stream)
    stream.synchronize()
    np.testing.assert_array_equal(out.copy_to_host(), lowbit.quantize(x, "float8_e4m3fn", rounding=mode))
