"""Kernel compiles are announced by the CLI, once each and only when Numba really compiles; the
library alone prints nothing. Each process gets its own empty Numba cache (NUMBA_CACHE_DIR)."""

from __future__ import annotations

import os
import subprocess
import sys

import yaml

# int8 on one row of 64 values compiles one kernel, the integer quantize loop (about a second).
STUDY = {
    "schema_version": 1,
    "name": "tiny",
    "formats": ["int8"],
    "metrics": ["qsnr_db"],
    "workloads": [{"kind": "normal", "shape": [1, 64], "name": "row"}],
}
FIRST = "lowbit: compiling kernels on first use (seconds each; Numba caches them on disk for later runs)"


def _run(args: list[str], numba_cache, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(numba_cache)}
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=True)


def test_the_cli_announces_a_compile_and_not_a_cache_load(tmp_path):
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(STUDY))
    cli = [sys.executable, "-m", "lowbit.cli", "run", "s.yaml"]
    cold = _run([*cli, "-o", "a", "--progress", "log"], tmp_path / "numba", tmp_path).stderr.splitlines()
    notices = [line for line in cold if "compiling" in line]
    assert notices == [FIRST, "lowbit: compiling kernel 1: quantize_int..."]
    # another output folder: the point is computed again, with the kernel from the cache
    warm = _run([*cli, "-o", "b", "--progress", "log"], tmp_path / "numba", tmp_path).stderr
    assert "tiny: 1/1 points" in warm and "compiling" not in warm
    quiet = _run([*cli, "-o", "c", "--no-progress"], tmp_path / "numba-2", tmp_path).stderr
    assert quiet == ""


def test_the_library_compiles_quietly(tmp_path):
    code = "import numpy as np, lowbit; lowbit.quantize(np.arange(64, dtype=np.float32), 'int8')"
    done = _run([sys.executable, "-c", code], tmp_path / "numba", tmp_path)
    assert done.stderr == ""
    # the same compile, logged where a program turns INFO records on
    shown = "import logging; logging.basicConfig(level=logging.INFO, format='%(name)s %(message)s'); " + code
    done = _run([sys.executable, "-c", shown], tmp_path / "numba-2", tmp_path)
    assert done.stderr.splitlines()[-1] == "lowbit.simulator.kernels.jit compiling kernel 1: quantize_int..."
