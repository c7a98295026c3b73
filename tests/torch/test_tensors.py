"""lowbit.torch's tensor API (quantize, encode, decode) against the NumPy API, bit for bit.

Expected values come from lowbit's NumPy API on the same data (the acceptance criterion is
equality with it), from NumPy's own float16 widening and from bfloat16's definition (the top 16
bits of a float32). Every catalog format, on random and edge-case tensors; on the CPU, under the
CUDA simulator (NUMBA_ENABLE_CUDASIM=1, set in tests/conftest.py) and, when a GPU is present and
the simulator is off, on CUDA tensors.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

import lowbit
from lowbit.formats import ElementFormat, FloatFormat, IntFormat, known_names

from ..helpers import grid_inputs, random_f32

torch = pytest.importorskip("torch")  # tests/torch/conftest.py fails instead under CI=true

from lowbit import torch as lt  # noqa: E402  (needs torch, checked just above)
from lowbit.torch import tensors  # noqa: E402

NAMES = known_names()
ROW = 256  # a multiple of every catalog block size (16, 32, 64, 128), and even for 2-D codebooks
F32_MAX = np.finfo(np.float32).max
F32_TINY = np.finfo(np.float32).tiny  # smallest normal float32
GPU = torch.cuda.is_available() and os.environ.get("NUMBA_ENABLE_CUDASIM") == "0"


# ---------------------------------------------------------------- inputs


def _element_grid(fmt) -> np.ndarray | None:
    """The values of fmt's elements (fmt itself or a block format's element) with every
    midpoint (a tie), or None when the elements are not a Float/Int format."""
    element = fmt if isinstance(fmt, ElementFormat) else getattr(fmt, "element", None)
    if not isinstance(element, (FloatFormat, IntFormat)):
        return None
    return grid_inputs(element)


def _rows(values: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """values laid out in rows of ROW, the last row completed from `fill`."""
    pad = (-values.size) % ROW
    return np.concatenate([values.astype(np.float32), fill[:pad].astype(np.float32)]).reshape(-1, ROW)


def _random(rows: int = 4, seed: int = 0) -> np.ndarray:
    """Normal data with one magnitude per row (2^-6 .. 2^5) and an outlier."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, ROW)) * np.exp2(rng.integers(-6, 6, rows))[:, None]
    x[-1, 5] *= 50
    return x.astype(np.float32)


def _edges(fmt) -> np.ndarray:
    """Zeros (whole zero blocks, both signs), +-float32 max, +-the format's largest value and past
    it, float32 subnormals and the format's smallest values and ties."""
    fill = _random(2, seed=9).reshape(-1)
    zeros = np.zeros(ROW, np.float32)
    zeros[ROW // 2 :] = -0.0
    big = np.array([F32_MAX, -F32_MAX, 3e38, -1e38, 2.0**100, -(2.0**64), 1.0, -1.0], np.float32)
    tiny = np.array([1e-45, -1e-45, 1e-40, -3e-39, F32_TINY, -F32_TINY, 2.0**-140, 2.0**-130], np.float32)
    parts = [zeros, _rows(big, fill).reshape(-1), _rows(tiny, fill).reshape(-1)]
    grid = _element_grid(fmt)
    if grid is not None:
        parts.append(_rows(grid, fill).reshape(-1))
    return np.concatenate(parts).reshape(-1, ROW)


def _specials() -> np.ndarray:
    """Random rows with NaN (both signs), +Inf and -Inf in some blocks."""
    x = _random(4, seed=3)
    x[0, 3] = np.nan
    x[1, 70] = np.inf
    x[2, 130] = -np.inf
    x[3, 200] = -np.nan
    x[3, 201] = np.inf
    return x


def _cases(fmt) -> dict[str, np.ndarray]:
    return {
        "random": _random(),
        "bits": random_f32(4 * ROW, seed=1).reshape(-1, ROW),  # every exponent, subnormals included
        "edges": _edges(fmt),
        "specials": _specials(),
    }


# ---------------------------------------------------------------- comparisons


def _bits(a) -> np.ndarray:
    """Bit patterns of a float array or tensor (NaN payloads and signs included)."""
    if isinstance(a, torch.Tensor):
        assert a.device.type == "cpu"
        a = a.numpy()
    a = np.asarray(a)
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def _outcome(fn):
    """fn()'s result, or the (type, message) of what it raised: both APIs must agree on either."""
    try:
        return fn()
    except (TypeError, ValueError) as err:
        return (type(err), str(err))


def _assert_same_values(got, want) -> None:
    """A tensor equal to a NumPy result bit for bit (dtype and shape included), or the same error."""
    if isinstance(want, tuple):
        assert got == want
        return
    assert isinstance(got, torch.Tensor), got
    assert got.dtype == torch.from_numpy(np.empty(0, want.dtype)).dtype
    assert tuple(got.shape) == want.shape
    np.testing.assert_array_equal(_bits(got), _bits(want))


def _host(a):
    if isinstance(a, torch.Tensor):
        return a.cpu().numpy()
    return a


def _assert_same_encoded(got, want) -> None:
    if isinstance(want, tuple):
        assert got == want
        return
    assert isinstance(got.codes, torch.Tensor)
    assert (got.format, got.shape) == (want.format, want.shape)
    np.testing.assert_array_equal(_host(got.codes), want.codes)
    assert got.codes.numpy().dtype == want.codes.dtype
    if want.scales is None:
        assert got.scales is None
    else:
        assert isinstance(got.scales, torch.Tensor)
        assert _host(got.scales).dtype == np.asarray(want.scales).dtype
        np.testing.assert_array_equal(_host(got.scales), want.scales)
    np.testing.assert_array_equal(np.float64(got.tensor_scale or 0.0), np.float64(want.tensor_scale or 0.0))
    np.testing.assert_equal(got.meta, want.meta)


def _quantize_both(x: np.ndarray, name: str, view=lambda a: a, **kw):
    """lowbit.torch.quantize on a tensor sharing x's memory (seen through `view`), and
    lowbit.quantize on the same view of a separate copy of x."""
    got = _outcome(lambda: lt.quantize(view(torch.from_numpy(x.copy())), name, **kw))
    want = _outcome(lambda: lowbit.quantize(view(x.copy()), name, **kw))
    return got, want


# ---------------------------------------------------------------- every catalog format, CPU


@pytest.mark.parametrize("name", NAMES)
def test_quantize_encode_decode_equal_numpy(name):
    for case, x in _cases(lowbit.get_format(name)).items():
        got, want = _quantize_both(x, name)
        _assert_same_values(got, want)
        assert not isinstance(want, tuple), f"{case}: the NumPy API accepts every float32 input"
        # nan='raise' and 'zero' differ only on NaN input; both must fail or succeed as in NumPy
        for nan in ("raise", "zero") if case == "specials" else ("raise",):
            enc = _outcome(lambda x=x, nan=nan: lt.encode(torch.from_numpy(x.copy()), name, nan=nan))
            ref = _outcome(lambda x=x, nan=nan: lowbit.encode(x.copy(), name, nan=nan))
            _assert_same_encoded(enc, ref)
            if isinstance(ref, tuple):
                continue
            decoded = lt.decode(enc)
            _assert_same_values(decoded, lowbit.decode(ref))
            if case != "specials":  # NaN encodes as zero under nan='zero' in formats without a NaN code
                np.testing.assert_array_equal(_bits(decoded), _bits(got), err_msg=case)


@pytest.mark.parametrize("name", NAMES)
def test_axes_and_strided_tensors(name):
    x = _random(8, seed=4)  # 8 x 256: blocks along axis 0 are short, padded as the NumPy API pads them
    for axis in (0, -1, 1):  # 1 is -1 of a 2-D tensor, named the other way
        _assert_same_values(*_quantize_both(x, name, axis=axis))
    transposed = lambda a: a.T  # noqa: E731  (a non-contiguous 256 x 8 view)
    strided = lambda a: a[1::2, ::2]  # noqa: E731  (every other row and column: strides in both axes)
    for view in (transposed, strided):
        for axis in (0, -1):
            _assert_same_values(*_quantize_both(x, name, view=view, axis=axis))
    t = transposed(torch.from_numpy(x.copy()))
    assert not t.is_contiguous()
    enc = lt.encode(t, name, axis=0)
    _assert_same_encoded(enc, lowbit.encode(x.copy().T, name, axis=0))
    _assert_same_values(lt.decode(enc), lowbit.quantize(x.copy().T, name, axis=0))


@pytest.mark.parametrize("name", ["float8_e4m3fn", "float4_e2m1fn", "int4", "mxfp4", "nvfp4", "nf4_codebook"])
@pytest.mark.parametrize("rounding", ["rtz", "rup", "stochastic"])
def test_rounding_modes_and_seed(name, rounding):
    x = _random(2, seed=6)
    seed = 5 if rounding == "stochastic" else None
    _assert_same_values(*_quantize_both(x, name, rounding=rounding, seed=seed))


@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2", "bfloat16", "int8", "mxfp4", "nvfp4", "nf4"])
def test_float64_tensors_behave_as_float64_arrays(name):
    x = np.concatenate([_random(2, seed=7).astype(np.float64), np.full((1, ROW), 17.0 + 2.0**-40)])
    x[0, :4] = [np.nan, np.inf, -np.inf, 1e-310]  # float64-only subnormal
    got, want = _quantize_both(x, name)
    _assert_same_values(got, want)
    # element formats round from float64 (a float32 intermediate would round twice); blocks compute in float32
    assert got.dtype == (torch.float64 if isinstance(lowbit.get_format(name), ElementFormat) else torch.float32)


def _bfloat16_widened(t) -> np.ndarray:
    """bfloat16's definition: the top 16 bits of a float32, the low 16 zero."""
    return (t.view(torch.int16).numpy().astype(np.uint16).astype(np.uint32) << 16).view(np.float32)


@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2", "float4_e2m1fn", "int8", "mxfp4", "nvfp4", "nf4"])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_tensors_widen_to_float32(name, dtype):
    t = torch.from_numpy(np.concatenate([_random(2, seed=8), _specials()[:1]]))
    t[0, :6] = torch.tensor([65504.0, -65504.0, 6e-8, -6e-8, 1e-5, 3e38])  # float16's edges; bf16's range
    t = t.to(getattr(torch, dtype))
    widened = t.numpy().astype(np.float32) if dtype == "float16" else _bfloat16_widened(t)
    got = lt.quantize(t, name)
    assert got.dtype == torch.float32
    _assert_same_values(got, lowbit.quantize(widened, name))
    _assert_same_encoded(lt.encode(t, name, nan="zero"), lowbit.encode(widened, name, nan="zero"))
    if dtype == "float16":  # the NumPy API's own rule for float16 arrays is the same widening
        _assert_same_values(got, lowbit.quantize(t.numpy(), name))


@pytest.mark.parametrize("name", ["float8_e4m3fn", "int4", "int8", "uint8", "mxfp4", "nvfp4", "int8_per_channel"])
@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32", "int64"])
def test_integer_tensors_behave_as_integer_arrays(name, dtype):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(2)
    x = rng.integers(max(info.min, -(2**40)), min(info.max, 2**40), (2, ROW), dtype=dtype, endpoint=True)
    x[0, :2] = info.min, info.max
    x[1, :32] = 0  # a zero block
    got, want = _quantize_both(x, name)
    _assert_same_values(got, want)


# ---------------------------------------------------------------- memory, gradients, errors


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int32])
def test_host_view_shares_memory(dtype):
    t = torch.arange(64 * 4).reshape(4, 64).to(dtype)
    for view in (t, t.T, t[:, ::2]):
        a = tensors.host_view(view)
        assert np.shares_memory(a, t.numpy())
        np.testing.assert_array_equal(a, view.numpy())


@pytest.mark.parametrize("name", ["float8_e4m3fn", "mxfp4", "nvfp4"])
def test_cpu_quantize_and_encode_copy_nothing(name, monkeypatch):
    """The NumPy API sees the tensor's own memory, and the result tensor is the NumPy result's memory."""
    seen = {}

    def spy(api):
        def call(x, *args, **kwargs):
            seen["in"], seen["out"] = x, api(x, *args, **kwargs)
            return seen["out"]

        return call

    t = torch.from_numpy(_random(4, seed=10))
    monkeypatch.setattr(tensors.simulator, "quantize", spy(lowbit.simulator.quantize))
    y = lt.quantize(t, name)
    assert np.shares_memory(seen["in"], t.numpy())
    assert np.shares_memory(y.numpy(), seen["out"])
    monkeypatch.setattr(tensors.simulator, "encode", spy(lowbit.simulator.encode))
    enc = lt.encode(t.T, name)
    assert np.shares_memory(seen["in"], t.numpy())
    assert np.shares_memory(enc.codes.numpy(), seen["out"].codes)


@pytest.mark.parametrize("name", ["float8_e4m3fn", "mxfp4", "nf4"])
def test_requires_grad_tensors(name):
    leaf = torch.from_numpy(_random(2, seed=11)).requires_grad_()
    for t in (leaf, leaf * 2):  # a leaf, and a tensor inside a graph
        y = lt.quantize(t, name)
        assert not y.requires_grad and y.grad_fn is None
        _assert_same_values(y, lowbit.quantize(t.detach().numpy(), name))
        enc = lt.encode(t, name)
        assert not enc.codes.requires_grad
        _assert_same_values(lt.decode(enc), lowbit.quantize(t.detach().numpy(), name))
    assert leaf.grad is None


def test_decode_of_raw_codes():
    codes = torch.arange(256, dtype=torch.uint8)
    for name in ("float8_e4m3fn", "float8_e5m2", "int8", "nf4_codebook"):
        c = codes[:16] if name == "nf4_codebook" else codes
        _assert_same_values(lt.decode(c, name), lowbit.decode(c.numpy(), name))


@pytest.mark.parametrize("api", ["quantize", "encode"])
def test_errors_name_the_bad_argument(api):
    fn = getattr(lt, api)
    for bad in ([1.0, 2.0], np.ones(4, np.float32), 3.0):
        with pytest.raises(TypeError, match="torch.Tensor"):
            fn(bad, "int8")
    for dtype in (torch.complex64, torch.bool):
        with pytest.raises(TypeError, match=str(dtype)):
            fn(torch.ones(4, dtype=dtype), "int8")
    with pytest.raises(TypeError, match="strided"):
        fn(torch.eye(4).to_sparse(), "int8")
    with pytest.raises(ValueError, match="nosuch"):
        fn(torch.ones(4), "nosuch")
    with pytest.raises(ValueError, match="rounding"):
        fn(torch.ones(4), "int8", rounding="sideways")
    with pytest.raises(ValueError, match="axis"):
        fn(torch.ones(4, 32), "mxfp4", axis=2)


def test_decode_errors():
    with pytest.raises(TypeError, match="Encoded"):
        lt.decode([1, 2, 3], "int8")
    with pytest.raises(TypeError, match="fmt"):
        lt.decode(torch.zeros(4, dtype=torch.uint8))


# ---------------------------------------------------------------- CUDA: simulator and device

SIM_FORMATS = ["float8_e4m3fn", "float4_e2m1fn", "int8", "bfloat16", "mxfp4", "nvfp4", "nf4", "int4_g128"]


@pytest.mark.parametrize("name", SIM_FORMATS)
def test_cuda_target_equals_cpu(name):
    """target='cuda' runs the CUDA kernels (in the simulator unless NUMBA_ENABLE_CUDASIM=0); tiny sizes."""
    cuda = pytest.importorskip("numba.cuda")
    if not cuda.is_available():
        pytest.skip("no CUDA device and the CUDA simulator is off")
    x = np.concatenate([_random(1, seed=12), _specials()[:1]])  # 512 elements, NaN and Inf included
    x[0, :8] = [0.0, -0.0, F32_MAX, -F32_MAX, 1e-40, -1e-45, 0.5, -1.5]
    t = torch.from_numpy(x)
    cpu = lt.quantize(t, name)
    got = lt.quantize(t, name, target="cuda")
    assert got.device.type == "cpu"
    _assert_same_values(got, cpu.numpy())
    _assert_same_values(got, lowbit.quantize(x, name, target="cuda"))


@pytest.mark.skipif(not GPU, reason="needs a CUDA GPU and NUMBA_ENABLE_CUDASIM=0 (scripts/gpu_check.sh)")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_tensors_in_and_out(name):
    for case, x in _cases(lowbit.get_format(name)).items():
        t = torch.from_numpy(x).cuda()
        got = lt.quantize(t, name)
        assert got.device == t.device, case
        _assert_same_values(got.cpu(), lowbit.quantize(x, name))
        enc = lt.encode(t, name, nan="zero")
        assert enc.codes.device == t.device
        _assert_same_encoded(_cpu_encoded(enc), lowbit.encode(x, name, nan="zero"))
        decoded = lt.decode(enc)
        assert decoded.device == t.device
        _assert_same_values(decoded.cpu(), lowbit.decode(lowbit.encode(x, name, nan="zero")))


def _cpu_encoded(enc):
    scales = None if enc.scales is None else enc.scales.cpu()
    return dataclasses.replace(enc, codes=enc.codes.cpu(), scales=scales)


@pytest.mark.skipif(not GPU, reason="needs a CUDA GPU and NUMBA_ENABLE_CUDASIM=0 (scripts/gpu_check.sh)")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("fmt", ["float8_e4m3fn", "mxfp4", "nvfp4"])  # the element and the block device paths
def test_cuda_side_stream_and_dtypes(dtype, fmt):
    """On a non-default stream, ordered after work queued on it (the kernels run on torch's current stream)."""
    x = torch.from_numpy(_random(64, seed=13))
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        t = (x.cuda(non_blocking=True) * 3).to(dtype)  # queued on the side stream, not yet done
        got = lt.quantize(t, fmt)
        got_t = t.cpu()
    stream.synchronize()
    want = lowbit.quantize(tensors.host_view(got_t), fmt)
    _assert_same_values(got.cpu(), want)
