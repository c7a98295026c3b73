"""lowbit's floor plan, read from its imports with `ast` (README "How it is built").

Rooms sit on floors; a module may import its own room, or a room on a lower floor. Rooms on one
floor do not import each other, except the simulator's inner rooms, which have floors of their own
inside the simulator. No import cycle between modules, and no import inside a function except in
`lowbit.lazy`, the one home of deferred imports.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

import lowbit
from lowbit import lazy

ROOT = Path(lowbit.__file__).parent


@dataclass(frozen=True)
class Room:
    floor: int
    package: str  # rooms of one package on one floor: floors inside the package (`sub`)
    sub: int = 0


# Longest prefix wins. The order follows DESIGN.md section 1 and section 11.
ROOMS = {
    "lowbit._version": Room(0, "_version"),
    "lowbit.lazy": Room(0, "lazy"),
    "lowbit.formats": Room(1, "formats"),
    "lowbit.simulator.kernels": Room(2, "simulator", 0),
    "lowbit.simulator.host": Room(2, "simulator", 1),
    "lowbit.simulator.gemm": Room(2, "simulator", 2),
    "lowbit.simulator.reference": Room(2, "simulator", 2),
    "lowbit.simulator": Room(2, "simulator", 3),
    "lowbit.costmodel": Room(2, "costmodel"),
    "lowbit.models": Room(3, "models"),
    "lowbit.study": Room(4, "study"),
    "lowbit.dashboard": Room(5, "dashboard"),
    "lowbit.cli": Room(6, "cli"),
    "lowbit": Room(7, "lowbit"),
}


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    in_function: bool


def module_names(root: Path, package: str) -> dict[str, Path]:
    names = {}
    for path in root.rglob("*.py"):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level:
        base = base[: len(base) - (node.level - 1)]
        full = ".".join(base + ([node.module] if node.module else []))
    else:
        full = node.module or ""
    return [f"{full}.{a.name}" if f"{full}.{a.name}" in known else full for a in node.names]


def read_imports(root: Path, package: str) -> tuple[dict[str, Path], list[Import]]:
    """Every import statement of every module under root, resolved to module names."""
    names = module_names(root, package)
    found = []
    for module, path in names.items():
        tree = ast.parse(path.read_text(), str(path))
        inside = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                  for n in ast.walk(f)}  # fmt: skip
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _targets(node, module, path.name == "__init__.py", set(names)):
                    found.append(Import(module, target, node.lineno, id(node) in inside))
    return names, found


def room_of(module: str) -> Room:
    prefix = max((p for p in ROOMS if module == p or module.startswith(p + ".")), key=len)
    return ROOMS[prefix]


def upward(imports: list[Import], package: str) -> list[Import]:
    """Imports of one's own package that do not point to the same room or down."""
    bad = []
    for imp in imports:
        if not (imp.target == package or imp.target.startswith(package + ".")):
            continue
        src, dst = room_of(imp.source), room_of(imp.target)
        same = src == dst and (src.package != "simulator" or src.sub == dst.sub)
        down = dst.floor < src.floor or (dst.package == src.package and dst.sub < src.sub)
        if not (same or down):
            bad.append(imp)
    return bad


def cycles(names: dict[str, Path], imports: list[Import]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {m: set() for m in names}
    for imp in imports:
        if imp.target in names and imp.target != imp.source:
            graph[imp.source].add(imp.target)
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def deferred(imports: list[Import], package: str) -> list[Import]:
    """Imports inside functions, outside `<package>.lazy`, or of anything `lazy` does not list."""
    return [
        i
        for i in imports
        if i.in_function and (i.source != f"{package}.lazy" or not i.target.startswith(lazy.DEFERRED))
    ]


def _show(imports: list[Import]) -> str:
    return "\n".join(f"{i.source}:{i.line} imports {i.target}" for i in imports)


@pytest.fixture(scope="module")
def house():
    return read_imports(ROOT, "lowbit")


def test_no_import_cycles(house):
    names, imports = house
    assert cycles(names, imports) == []


def test_no_import_runs_up_a_floor(house):
    _, imports = house
    bad = upward(imports, "lowbit")
    assert not bad, _show(bad)


def test_no_function_level_imports_outside_lazy(house):
    _, imports = house
    bad = deferred(imports, "lowbit")
    assert not bad, _show(bad)


def test_every_module_has_a_room(house):
    names, _ = house
    for module in names:
        assert room_of(module) is not None


def test_the_checks_catch_each_fault(tmp_path):
    """The checks fail on a small package that breaks each rule once."""
    pkg = tmp_path / "lowbit"
    for folder in ("formats", "simulator/host", "simulator/kernels", "study"):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "formats/spec.py").write_text("from ..study import runner\n")  # up four floors
    (pkg / "study/runner.py").write_text("from ..formats import spec\n\ndef f():\n    import dask\n")
    (pkg / "simulator/kernels/cpu.py").write_text("from ..host import codec\n")  # up inside the simulator
    (pkg / "simulator/host/codec.py").write_text("from ..kernels import cpu\n")
    names, imports = read_imports(pkg, "lowbit")
    assert {(i.source, i.target) for i in upward(imports, "lowbit")} == {
        ("lowbit.formats.spec", "lowbit.study.runner"),
        ("lowbit.simulator.kernels.cpu", "lowbit.simulator.host.codec"),
    }
    assert sorted(map(tuple, cycles(names, imports))) == [
        ("lowbit.formats.spec", "lowbit.study.runner"),
        ("lowbit.simulator.host.codec", "lowbit.simulator.kernels.cpu"),
    ]
    assert [(i.source, i.target) for i in deferred(imports, "lowbit")] == [("lowbit.study.runner", "dask")]
