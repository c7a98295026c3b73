"""The cost model's data files (`data/*.yaml`), read once on first use."""

from __future__ import annotations

import functools
from importlib import resources

import yaml


@functools.cache
def load(name: str) -> dict:
    """The parsed contents of data/<name>.yaml (cached; treat as read-only)."""
    # Parsed from the open file, so that a YAML error names it rather than "<unicode string>".
    with resources.files(__package__).joinpath("data").joinpath(f"{name}.yaml").open(encoding="utf-8") as stream:
        return yaml.safe_load(stream)
