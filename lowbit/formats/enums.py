"""The one parser of lowbit's enums: every mode a user names by string is turned into its enum
member here, at the edge, so that code below sees members only."""

from __future__ import annotations

import enum
from typing import TypeVar

E = TypeVar("E", bound=enum.Enum)


def _label(member: enum.Enum) -> str:
    """What a user writes for a member: its string value, or its lowercase name (integer enums)."""
    return member.value if isinstance(member.value, str) else member.name.lower()


def parse_enum(enum_cls: type[E], value: E | str, argument: str) -> E:
    """The member of `enum_cls` that `value` names (case-insensitive; its value or its name).

    argument: the name of the parameter being parsed, used in the error message.
    Raises ValueError naming the argument and the allowed values.
    """
    if isinstance(value, enum_cls):
        return value
    if isinstance(value, str):
        key = value.lower()
        for member in enum_cls:
            if key in (_label(member).lower(), member.name.lower()):
                return member
    allowed = ", ".join(repr(_label(m)) for m in enum_cls)
    raise ValueError(f"{argument} must be one of {allowed}, got {value!r}")
