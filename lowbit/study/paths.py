"""Where a study may write: every file it writes lies inside its output folder.

A study file is untrusted: its `name` and `output.file` become a file name, and its `output.dir` a
folder under the current one. So a name is plain (not empty, no `/` or `\\`, no leading dot, no
control characters, at most NAME_CHARS characters) and `output.dir` is relative without `..`; only the
command line (`lowbit run -o DIR`) points a study at any folder. `table_path` checks the final path
once more, for a Study built without validation.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

from .errors import echo

NAME_CHARS = 100  # a file name's limit is 255 bytes; a study's name also labels plots


def _no_control(value: str) -> None:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")


def plain_name(value: str) -> str:
    """`value` if it can be a file name inside the output folder, else ValueError saying why."""
    if not value.strip():
        raise ValueError("must not be empty")
    if len(value) > NAME_CHARS:
        raise ValueError(f"must be at most {NAME_CHARS} characters, got {len(value):,}")
    if "/" in value or "\\" in value:
        raise ValueError("must be a plain name, without '/' or '\\' (it names a file inside the output folder)")
    if value.startswith("."):
        raise ValueError("must not start with '.' (no hidden files, no '..')")
    _no_control(value)
    return value


def relative_folder(value: str) -> str:
    """`value` if it is a folder below the current one, else ValueError saying why."""
    if not value.strip():
        raise ValueError("must not be empty; '.' is the current folder")
    if PurePosixPath(value).is_absolute() or PureWindowsPath(value).anchor:
        raise ValueError("must be a relative folder; to write elsewhere, pass `lowbit run -o DIR`")
    if ".." in PurePosixPath(value.replace("\\", "/")).parts:
        raise ValueError("must not contain '..'; to write elsewhere, pass `lowbit run -o DIR`")
    _no_control(value)
    return value


def table_path(folder: str | Path, file: str) -> Path:
    """`folder / file`, or ValueError when `file` is not a plain name or the path leaves `folder`."""
    try:
        plain_name(file)
    except ValueError as err:
        raise ValueError(f"output.file: {err}, got {echo(file)}") from None
    path = Path(folder) / file
    if os.path.dirname(os.path.abspath(path)) != os.path.abspath(folder):
        raise ValueError(f"output.file: {echo(file)} resolves outside the output folder {echo(str(folder))}")
    return path
