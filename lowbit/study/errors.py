"""The study's error: every problem of a study file, each as `path: message`, in one bounded report.

A study file is user input of any size, so nothing here echoes it unbounded: a quoted value is cut to
`ECHO_CHARS` characters, a problem line to `LINE_CHARS`, and a report lists at most `MAX_PROBLEMS` lines.
"""

from __future__ import annotations

from collections.abc import Collection

ECHO_CHARS = 80  # a value quoted back to the user (a name, a given input)
LINE_CHARS = 400  # one problem line: its path, the message and the quoted value
MAX_PROBLEMS = 50  # lines in one report; the rest are counted


def clip(text: str, limit: int = ECHO_CHARS) -> str:
    """`text` cut to at most `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def echo(value: object) -> str:
    """A value quoted back in a message: its repr, cut to ECHO_CHARS characters."""
    return clip(repr(value))


class StudyError(ValueError):
    """A study file that cannot be used; `problems` lists `path: message` lines (each clipped)."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = [clip(p, LINE_CHARS) for p in problems]
        shown = self.problems[:MAX_PROBLEMS]
        if len(self.problems) > MAX_PROBLEMS:
            shown.append(f"... and {len(self.problems) - MAX_PROBLEMS} more problems")
        super().__init__(
            f"{clip(source, LINE_CHARS)}: " + (shown[0] if len(shown) == 1 else "\n  " + "\n  ".join(shown))
        )


def error_path(loc: tuple, tags: Collection[str]) -> str:
    """A pydantic error's location as a study path: ('formats', 3, 'spec', 'block') -> 'formats[3].block'.
    A union's tag after an index is dropped (`tags`), and so is pydantic's '[key]' marker after a
    mapping's key (the key itself names the place)."""
    out = ""
    previous = None
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        elif not (isinstance(previous, int) and part in tags) and not str(part).startswith("function-"):
            out += ("." if out else "") + clip(str(part))  # a key the user wrote: any length
        previous = part
    return out or "(top level)"


def error_message(err: dict) -> str:
    """A pydantic error's message, with the given value quoted (clipped) where the message lacks it."""
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "required key is missing"
    if "input" in err and err["type"] not in ("model_type",):
        given = echo(err["input"])
        return msg if isinstance(err["input"], str) and given in msg else f"{msg}, got {given}"
    return msg
