"""Timing shared by the benchmark scripts."""

from __future__ import annotations

import time


def best_seconds(fn, repeat: int) -> float:
    """Seconds of the fastest of `repeat` runs of fn, after one warm-up run."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best
