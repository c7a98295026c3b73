"""The cost model's data files (`data/*.yaml`), read once on first use."""

from __future__ import annotations

import functools
from importlib import resources

import yaml


@functools.cache
def load(name: str) -> dict:
    """The parsed contents of data/<name>.yaml (cached; treat as read-only)."""
    text = resources.files(__package__).joinpath("data").joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)
