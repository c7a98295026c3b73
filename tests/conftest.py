"""Shared test set-up. The CUDA kernels run in Numba's CUDA simulator unless the caller set
NUMBA_ENABLE_CUDASIM itself (on a machine with a GPU, set it to 0 to test the real device)."""

import os

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
