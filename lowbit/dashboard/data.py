"""Reading results: only Parquet files directly inside the results folder, by name, and every
problem (an empty folder, a corrupt file, failed points) as a message rather than an exception."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..study.store import read_table


@dataclass(frozen=True)
class Loaded:
    table: pd.DataFrame
    message: str


def list_tables(root: Path) -> list[str]:
    """Names of the Parquet files directly in `root` (no subfolders, no links out of it)."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.glob("*.parquet") if p.is_file() and _inside(root, p))


def _inside(root: Path, p: Path) -> bool:
    try:
        p.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def safe_path(root: Path, name: str | None) -> Path | None:
    """The file `name` in `root`, or None for anything else: other folders, '..', absolute paths."""
    if not name or not isinstance(name, str) or "/" in name or "\\" in name or name in (".", ".."):
        return None
    if name not in list_tables(root):
        return None
    return root / name


def load(root: Path, name: str | None) -> Loaded:
    """The rows of a results file that computed (status ok), and a message about the rest."""
    if not list_tables(root):
        return Loaded(pd.DataFrame(), f"No results in {root.name or root}: run a study into it first (lowbit run).")
    path = safe_path(root, name)
    if path is None:
        return Loaded(pd.DataFrame(), f"Refused: {name!r} is not a results file of this folder.")
    try:
        df = read_table(path)
    except Exception as err:  # any unreadable file is a message on the page, not a traceback
        return Loaded(pd.DataFrame(), f"Cannot read {name}: {type(err).__name__}: {err}")
    if "status" in df.columns:
        failed = df[df["status"] != "ok"]
        ok = df[df["status"] == "ok"]
        note = (
            f"{len(failed)} failed point(s) left out: "
            + "; ".join(f"{r['format']} on {r['workload']}: {r['error']}" for _, r in failed.head(3).iterrows())
            if len(failed)
            else ""
        )
        return Loaded(ok.reset_index(drop=True), note)
    return Loaded(df, "")
