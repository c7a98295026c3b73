"""The CPU row drivers (`kernels.cpu.RowDriver`): a forked child gets working threads of its own,
and a compile for new argument types (a read-only input) raises no warning."""

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np

import lowbit

CHILD = textwrap.dedent(
    """
    import multiprocessing, os, sys
    import numpy as np
    import lowbit

    x = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    expected = lowbit.quantize(x, "mxfp4")  # the parent's pool threads start here

    def child():
        ok = np.array_equal(lowbit.quantize(x, "mxfp4"), expected)
        os._exit(0 if ok else 3)

    p = multiprocessing.get_context("fork").Process(target=child)
    p.start()
    p.join(120)
    if p.exitcode is None:
        p.kill()
        sys.exit("the forked child hung")
    sys.exit(p.exitcode)
    """
)


def test_forked_child_runs_row_drivers():
    # The workqueue layer forks cleanly (OpenMP's refuses a fork after use, by design of OpenMP).
    env = {"NUMBA_THREADING_LAYER": "workqueue", "NUMBA_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-c", CHILD], env={**os.environ, **env}, capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode()[-2000:]


def test_new_argument_types_compile_without_warning():
    x = np.random.default_rng(1).standard_normal((64, 64)).astype(np.float32)
    expected = lowbit.quantize(x, "mxfp4")
    x.setflags(write=False)  # a read-only array is a new Numba type: a second compile
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = lowbit.quantize(x, "mxfp4")
    np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))
