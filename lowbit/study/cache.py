"""The point cache: one JSON file per finished point, `<output dir>/.lowbit-cache/<point hash>.json`.

An entry is `{"key": <point hash>, "sha256": <checksum of the row>, "row": <the row>}`; the checksum is
the sha256 of the row's canonical JSON (keys sorted, no spaces). Reading an entry checks that it is
whole JSON, that its key and its row's `point` are the file's point, that its row holds the point's
format and workload specs, and that the checksum matches. An entry that fails a check is named in a
CacheWarning, removed, and its point computed again. Entries are written to a temporary file and
renamed (store.atomic_write), so a kill leaves the whole file or none; the temporary files of killed
runs are removed by the next run (store.remove_stale_temporaries).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .store import atomic_write

CACHE_DIR = ".lowbit-cache"
ENTRY_MAX_BYTES = 16 << 20  # a row is a few kB; anything this large is not an entry lowbit wrote


class CacheWarning(UserWarning):
    """A cache entry that was discarded (corrupt, or another point's), or could not be written."""


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"a table cell must be a number, a string or a bool, got {type(value).__name__}")


def canonical(row: dict) -> str:
    """The row's canonical JSON: keys sorted, no spaces (what the checksum is taken of)."""
    return json.dumps(row, sort_keys=True, separators=(",", ":"), default=_plain)


def checksum(row: dict) -> str:
    return hashlib.sha256(canonical(row).encode()).hexdigest()


def plain_row(row: dict) -> dict:
    """The row as a cache read gives it back (NumPy scalars as Python numbers, key order kept), so that
    a fresh table and a resumed one are equal cell for cell."""
    return json.loads(json.dumps(row, default=_plain))


def entry_path(cache: Path, point: str) -> Path:
    return cache / f"{point}.json"


def write_entry(cache: Path, row: dict) -> None:
    """Cache a finished row (a CacheWarning, not an error, when the folder refuses it: the table still
    gets the row)."""
    entry = {"key": row["point"], "sha256": checksum(row), "row": row}

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(entry, f, default=_plain)
            f.flush()
            os.fsync(f.fileno())

    path = entry_path(cache, row["point"])
    try:
        atomic_write(path, write)
    except OSError as err:
        warnings.warn(f"{path}: cannot write the cache entry ({err.strerror or err})", CacheWarning, stacklevel=2)


def _problem(data: Any, payload: dict) -> str | None:
    """Why a parsed entry is not the cached row of the point `payload` (None: it is)."""
    if not isinstance(data, dict) or set(data) != {"key", "sha256", "row"} or not isinstance(data["row"], dict):
        return "not a lowbit cache entry ({key, sha256, row})"
    row = data["row"]
    if data["key"] != payload["hash"]:
        return f"its key is {str(data['key'])[:40]!r}, not this point's"
    if row.get("point") != payload["hash"]:
        return f"it holds the row of point {str(row.get('point'))[:40]!r}, not of this one"
    if data["sha256"] != checksum(row):
        return "its checksum does not match its row"
    if row.get("workload_spec") != payload["workload_json"] or row.get("format_spec") != payload["format_spec"]:
        return "its row's format or workload is not this point's"
    return None


def read_entry(cache: Path, payload: dict) -> tuple[dict | None, str | None]:
    """(row, None) for a sound entry; (None, None) when there is none; (None, why) for a bad one."""
    path = entry_path(cache, payload["hash"])
    try:
        with open(path, "rb") as f:
            raw = f.read(ENTRY_MAX_BYTES + 1)
    except FileNotFoundError:
        return None, None
    except OSError as err:
        return None, f"cannot be read ({err.strerror or err})"
    if len(raw) > ENTRY_MAX_BYTES:
        return None, f"larger than {ENTRY_MAX_BYTES >> 20} MiB"
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as err:  # truncated, bit-flipped, binary or empty
        return None, f"not valid JSON ({type(err).__name__}: {str(err)[:80]})"
    problem = _problem(data, payload)
    return (None, problem) if problem else (data["row"], None)


def load(cache: Path, payloads: list[dict]) -> dict[str, dict]:
    """{point hash: row} of the points with a sound entry. Each bad entry is named in a CacheWarning
    and removed (its point is then computed again)."""
    found = {}
    for p in payloads:
        row, problem = read_entry(cache, p)
        if row is not None:
            found[p["hash"]] = row
        elif problem is not None:
            path = entry_path(cache, p["hash"])
            warnings.warn(f"{path}: {problem}; discarded, the point is computed again", CacheWarning, stacklevel=2)
            with contextlib.suppress(OSError):  # a concurrent run may have removed or replaced it
                path.unlink()
    return found
