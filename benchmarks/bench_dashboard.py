"""Dashboard callback latency on a 10,000-point results table, measured in one run.

Times the Pareto explorer's callback body (lowbit.dashboard.views.pareto_view: read the table,
filter, front, figure) plus the figure's JSON encoding that Dash sends, on a synthetic table.
Target: under 300 ms on the development machine.
Run: python benchmarks/bench_dashboard.py [--points 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from timing import best_seconds  # benchmarks/ is on sys.path when a script runs

from lowbit.dashboard import views


def table(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    bits = rng.uniform(2, 16, n)
    return pd.DataFrame({
        "format": [f"f{i}" for i in range(n)], "status": "ok", "error": "", "workload": "normal",
        "family": rng.choice(["scaled", "float", "int"], n), "element": rng.choice(["e2m1", "e4m3", "int8"], n),
        "block": rng.choice([16, 32, 64], n), "scale": rng.choice(["e8m0", "e4m3"], n), "bits_per_element": bits,
        "qsnr_db": 6.02 * bits + rng.normal(0, 2, n), "mse": 4.0**-bits, "area_um2": rng.uniform(10, 1000, n),
    })  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        table(args.points).to_parquet(root / "big.parquet")
        print(f"{args.points} points")
        print("callback | ms")
        print("--- | ---")
        cases = [("qsnr_db", "bits_per_element", {}), ("mse", "area_um2", {})]
        cases.append(("qsnr_db", "bits_per_element", {"family": ["scaled"], "block": ["32"]}))
        for metric, cost, filters in cases:

            def call(metric=metric, cost=cost, filters=filters):
                fig, rows, _ = views.pareto_view(root, "big.parquet", "normal", metric, cost, filters, [])
                fig.to_json()

            name = f"pareto {metric} vs {cost}" + (" filtered" if filters else "")
            print(f"{name} | {best_seconds(call, args.repeat) * 1e3:.0f}")


if __name__ == "__main__":
    main()
