"""INT v.s. FP crossovers by Chen et al.'s method (arXiv 2510.25602), beside the paper's closed form.

    python studies/int_vs_fp_crest.py [--blocks N] [--seed S] [-o results]

For each of the paper's pairs (MXINT8/MXFP8 E4M3, MXINT6/MXFP6 E2M3, MXINT4/MXFP4 at block 32,
NVINT4/NVFP4 at block 16) it draws seeded Gaussian blocks (plain, and with the largest value
rescaled to spread the crest factors; see lowbit.study.crossover.Generator), quantizes them with
lowbit, bins them by crest factor and finds where QSNR_INT - QSNR_FP changes sign. MX pairs run with
the paper's rounded-up E8M0 scale (RCEIL) and with lowbit's catalog rule (OCP floor).

Writes, in the output folder (default results/):
- int_vs_fp_crest.parquet: QSNR per bin, with the pair, generator and scale rule of each row;
- int_vs_fp_crest_summary.parquet: one row per pair, generator and rule: the sampled crossover, the
  paper's, the closed form's (with the paper's 2^(b-1) INT levels and with the exact 2^(b-1) - 1),
  the percent difference from the paper, and the highest crest factor reached with INT's lead there
  (sampled and by the closed form).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from lowbit.formats import ScaleRule
from lowbit.study.crossover import PAPER_PAIRS, Generator, crest_factor_crossover, model_qsnr_fp, model_qsnr_int
from lowbit.study.store import write_table

NAME = "int_vs_fp_crest"


def _model_lead(pair, kappa: float) -> float:
    """INT's lead over FP (dB) by the closed form at crest factor `kappa`."""
    fp = pair.formats()[1]
    block = fp.block if pair.exact_max else None
    bits = pair.int_element.bits
    return float(
        model_qsnr_int(kappa, bits, rho=pair.rho, block=block)
        - model_qsnr_fp(kappa, fp.element, rho=pair.rho, block=block)
    )


def _rules(pair) -> list[ScaleRule | None]:
    """The paper's rule, and for MX pairs also the catalog's (OCP floor)."""
    return [pair.rule] if pair.rule is None else [pair.rule, ScaleRule.OCP_FLOOR]


def run(blocks: int, seed: int, progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(bins, summary) tables over every pair, generator and rule."""
    bins, summary = [], []
    exact = {p.label: p.model(levels=2.0 ** (p.int_element.bits - 1) - 1) for p in PAPER_PAIRS}
    for pair in PAPER_PAIRS:
        model = pair.model()
        for rule in _rules(pair):
            fi, ff = pair.formats(rule)
            for gen in Generator:
                r = crest_factor_crossover(fi, ff, n_blocks=blocks, seed=seed, generator=gen, progress=progress)
                label = {"pair": pair.label, "generator": gen.value, "rule": fi.rule.value}
                bins.append(r.table.assign(**label, int_format=r.int_format, fp_format=r.fp_format))
                top = r.table.iloc[-1] if len(r.table) else {"crest_factor": np.nan, "int_minus_fp_db": np.nan}
                summary.append(
                    {
                        **label,
                        "crossover": r.crossover,
                        "paper": pair.paper,
                        "model": model,
                        "model_exact_levels": exact[pair.label],
                        "diff_pct": 100.0 * (r.crossover / pair.paper - 1.0),
                        "max_crest": float(top["crest_factor"]),
                        "lead_at_max_db": float(top["int_minus_fp_db"]),
                        "model_lead_at_max_db": _model_lead(pair, float(top["crest_factor"])),
                    }
                )
    return pd.concat(bins, ignore_index=True), pd.DataFrame(summary)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=1 << 21, help="blocks drawn per pair (default 2^21)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", type=Path, default=Path("results"), help="output folder (default results/)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.blocks < 1:
        parser.error(f"--blocks must be positive, got {args.blocks}")
    bins, summary = run(args.blocks, args.seed, progress=not args.quiet)
    digest = hashlib.sha256(json.dumps({"blocks": args.blocks, "seed": args.seed}).encode()).hexdigest()[:16]
    args.output.mkdir(parents=True, exist_ok=True)
    write_table(bins, args.output / f"{NAME}.parquet", NAME, digest)
    write_table(summary, args.output / f"{NAME}_summary.parquet", NAME, digest)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.precision", 3):
        print(summary.replace(np.nan, None).to_string(index=False))
    return summary


if __name__ == "__main__":
    main()
