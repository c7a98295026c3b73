"""Draws the linearity theorem's check from a model study's table: measured fidelity drop against
predicted, on log scales, with Pearson's r of the fidelities, as the README shows it.

    python scripts/plot_linearity.py results/minilm_formats.parquet docs/minilm_linearity.png [workload]

The workload defaults to the table's first one. Writing a PNG needs the `kaleido` package (and a Chrome
or Chromium); without it the figure is written as HTML beside the requested path.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from lowbit.dashboard.figures import linearity_figure
from lowbit.study.reports import linearity_rows, pearson


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__)
        return 2
    table, out = Path(argv[0]), Path(argv[1])
    df = pd.read_parquet(table)
    workload = argv[2] if len(argv) == 3 else str(df["workload"].iloc[0])
    rows = linearity_rows(df[df["workload"] == workload])
    if rows.empty:
        print(f"{table}: no row of workload {workload!r} has a predicted fidelity (the study needs allocations)")
        return 1
    fig = linearity_figure(rows, drops=True)
    fig.update_layout(width=900, height=560)
    try:
        fig.write_image(out, scale=1)
    except (ImportError, ValueError, RuntimeError) as err:
        out = out.with_suffix(".html")
        fig.write_html(out)
        print(f"no PNG ({err}); wrote {out}")
    print(f"{workload}: Pearson r = {pearson(rows):.4f} over {len(rows)} assignments -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
