"""Reading a study's YAML with bounds: a study file is untrusted input of any size and shape.

`read_yaml(path)` returns the parsed data and the problems it could report alongside the schema's
(duplicate keys), or raises StudyError naming the file and the line for what stops parsing:
- a file over MAX_BYTES (1 MiB), a binary file (a NUL byte), text that is not UTF-8;
- a YAML syntax error, an unknown tag, more than one document;
- nesting deeper than MAX_DEPTH levels, and aliases that expand the document past MAX_NODES nodes or
  MAX_SCALAR_CHARS characters of scalars (an alias bomb), or refer to a node that holds them.
The expansion is counted on the composed node graph, where each alias is one shared node, so a
bomb is refused in microseconds, before anything is built from it.

`with_lines(path, problems)` appends to each `formats[3].block: ...` problem of a file that parsed
the line and column where that key (or its nearest enclosing one) is written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.error import Mark, MarkedYAMLError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader, ReaderError
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from .errors import StudyError, echo

MAX_BYTES = 1 << 20  # 1 MiB: the longest shipped study is under 4 KiB
MAX_DEPTH = 100  # nesting levels, aliases expanded (a study nests about 6)
MAX_NODES = 200_000  # YAML nodes, aliases expanded (a 10,000-point sweep takes a few hundred)
MAX_SCALAR_CHARS = 8 << 20  # characters of scalars after alias expansion (8x the file cap)
_MERGE = "tag:yaml.org,2002:merge"


class _BoundError(MarkedYAMLError):
    """Well-formed YAML beyond one of this module's bounds."""


def _line(mark: Mark | None) -> str:
    return f"line {mark.line + 1}" if mark is not None else "(no line)"


class _Bounds(Composer, SafeConstructor, Resolver):
    """A safe loader's composing half that caps nesting and node count and records duplicate keys;
    a parser (libyaml's or PyYAML's) supplies the events."""

    def _start(self) -> None:
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self.depth = 0
        self.nodes = 0
        self.duplicates: list[tuple[int, str]] = []  # (line, problem)

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(yaml.AliasEvent):  # a shared node: its size is counted after composing
            return super().compose_node(parent, index)
        self.depth += 1
        self.nodes += 1
        if self.depth > MAX_DEPTH:
            raise _BoundError(None, None, f"nesting deeper than {MAX_DEPTH} levels", self.peek_event().start_mark)
        if self.nodes > MAX_NODES:
            raise _BoundError(None, None, f"more than {MAX_NODES:,} YAML nodes", self.peek_event().start_mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        if isinstance(node, MappingNode):
            self._record_duplicates(node)
        return node

    def _record_duplicates(self, node: MappingNode) -> None:
        """Keys written twice in one mapping (merge keys `<<` aside, whose keys may be overridden)."""
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE:
                continue
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            try:
                if key in first:
                    problem = f"line {line}: duplicate key {echo(key)} (first at line {first[key]})"
                    self.duplicates.append((line, problem))
                else:
                    first[key] = line
            except TypeError:  # an unhashable key: the constructor reports it
                continue


class PyLoader(_Bounds, Reader, Scanner, Parser):
    """The bounded loader on PyYAML's pure-Python parser (where libyaml is missing)."""

    def __init__(self, stream: str):
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        self._start()


_CParser = getattr(getattr(yaml, "cyaml", None), "CParser", None)
if _CParser is not None:

    class CLoader(_Bounds, _CParser):
        """The bounded loader on libyaml's parser: a 1 MiB file parses in a second, not twenty."""

        def __init__(self, stream: str):
            _CParser.__init__(self, stream)
            self._start()


LOADER: type[_Bounds] = CLoader if _CParser is not None else PyLoader


def _expanded(root: Node) -> None:
    """Refuse a node graph whose alias expansion exceeds the caps, or that contains itself."""
    sizes: dict[int, tuple[int, int, int]] = {}  # id(node) -> (nodes, scalar chars, height), aliases expanded
    open_: set[int] = set()

    def visit(node: Node, depth: int) -> tuple[int, int, int]:
        key = id(node)
        if key in open_:
            raise _BoundError(None, None, "an alias refers to a node that contains it (a recursive structure)",
                           node.start_mark)  # fmt: skip
        if key not in sizes:
            if depth > MAX_DEPTH:
                raise _BoundError(None, None, f"aliases nest deeper than {MAX_DEPTH} levels", node.start_mark)
            open_.add(key)
            nodes, chars, height = 1, 0, 1
            children = node.value if isinstance(node, SequenceNode) else [p for pair in node.value for p in pair]
            for child in children:
                if isinstance(child, ScalarNode):  # a leaf: counted here, without a call
                    nodes, chars, height = nodes + 1, chars + len(child.value), max(height, 2)
                    continue
                n, c, h = visit(child, depth + 1)
                nodes, chars, height = nodes + n, chars + c, max(height, h + 1)
            open_.discard(key)
            if nodes > MAX_NODES or chars > MAX_SCALAR_CHARS:
                raise _BoundError(None, None, f"aliases expand the document past {MAX_NODES:,} nodes or "
                               f"{MAX_SCALAR_CHARS:,} characters (an alias bomb?)", node.start_mark)  # fmt: skip
            sizes[key] = (nodes, chars, height)
        if depth + sizes[key][2] - 1 > MAX_DEPTH:
            raise _BoundError(None, None, f"aliases nest deeper than {MAX_DEPTH} levels", node.start_mark)
        return sizes[key]

    if not isinstance(root, ScalarNode):
        visit(root, 1)


def _text(path: Path) -> str:
    """The file's text: at most MAX_BYTES, no NUL byte, UTF-8 (a leading BOM dropped)."""
    source = str(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as err:
        raise StudyError(source, [f"cannot read the file ({err.strerror or err})"]) from None
    if len(raw) > MAX_BYTES:
        raise StudyError(source, [f"larger than {MAX_BYTES:,} bytes (1 MiB), the cap on a study file"])
    if b"\0" in raw:
        line = raw.count(b"\n", 0, raw.index(b"\0")) + 1
        raise StudyError(source, [f"line {line}: a NUL byte: a binary file, not YAML text"])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise StudyError(source, [f"line {line}, column {column}: not UTF-8 text (byte 0x{raw[err.start]:02x}); "
                                  "save the study as UTF-8"]) from None  # fmt: skip


def _yaml_problem(err: yaml.YAMLError, text: str) -> str:
    if isinstance(err, ReaderError):  # libyaml counts its position in bytes, PyYAML in characters: find it
        char = chr(err.character) if isinstance(err.character, int) else str(err.character)
        line = text.count("\n", 0, max(text.find(char), 0)) + 1
        return f"line {line}: malformed YAML: character {char!r} is not allowed in YAML text ({err.reason})"
    if isinstance(err, MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        where = f"{_line(mark)}, column {mark.column + 1}" if mark is not None else "(no line)"
        context = f" ({err.context}, at {_line(err.context_mark)})" if err.context and err.context_mark else ""
        kind = "" if isinstance(err, _BoundError) else "malformed YAML: "
        return f"{where}: {kind}{err.problem}{context}"
    return f"malformed YAML: {err}"


def read_yaml(path: str | Path) -> tuple[Any, list[str]]:
    """The parsed study file and its duplicate-key problems (`line N: duplicate key 'k' ...`), or
    StudyError naming the file and the line (see the module docstring)."""
    p = Path(path)
    text = _text(p)
    try:
        return _parse(text)
    except yaml.YAMLError as err:
        raise StudyError(str(p), [_yaml_problem(err, text)]) from None
    except RecursionError:  # a bound above should catch every deep structure first
        raise StudyError(str(p), [f"nesting deeper than {MAX_DEPTH} levels"]) from None


def _parse(text: str) -> tuple[Any, list[str]]:
    loader = LOADER(text)  # PyYAML's reader checks the characters here
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        _expanded(node)
        return loader.construct_document(node), [problem for _, problem in sorted(loader.duplicates)]
    finally:
        loader.dispose()


_LAST_STEP = re.compile(r"(\.[^.\[\]]+|\[\d+\])$")  # a path's last key (.block) or index ([3])


def with_lines(path: str | Path, problems: list[str]) -> list[str]:
    """Each `PATH: message` problem with ` (line L, column C)` appended, where PATH, or the nearest
    key or entry that contains it, is written in the file; other problems as they were. For schema
    errors, found after the file parsed: if it no longer parses, the problems are returned as given."""
    try:
        where = _places(_text(Path(path)))
    except (StudyError, yaml.YAMLError, RecursionError):
        return problems
    out = []
    for problem in problems:
        mark = _nearest(problem.split(": ", 1)[0], where)
        out.append(f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else problem)
    return out


def _nearest(step_path: str, where: dict[str, Mark]) -> Mark | None:
    while step_path:
        if step_path in where:
            return where[step_path]
        shorter = _LAST_STEP.sub("", step_path)
        if shorter == step_path:
            return None
        step_path = shorter
    return None


def _places(text: str) -> dict[str, Mark]:
    """{study path ('formats[3].block'): where its key or entry starts} for the file's node graph;
    a node shared by aliases is placed where it is first written."""
    loader = LOADER(text)
    try:
        root = loader.get_single_node()
    finally:
        loader.dispose()
    out: dict[str, Mark] = {}
    seen: set[int] = set()

    def walk(node: Node, prefix: str) -> None:
        if id(node) in seen or isinstance(node, ScalarNode):
            return
        seen.add(id(node))
        if isinstance(node, SequenceNode):
            steps = [(f"{prefix}[{i}]", child.start_mark, child) for i, child in enumerate(node.value)]
        else:
            steps = [(f"{prefix}.{k.value}" if prefix else k.value, k.start_mark, v)
                     for k, v in node.value if isinstance(k, ScalarNode)]  # fmt: skip
        for here, mark, child in steps:
            out.setdefault(here, mark)
            walk(child, here)

    if root is not None:
        walk(root, "")
    return out
