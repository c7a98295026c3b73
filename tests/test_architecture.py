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
    "lowbit.simulator.matrix_engines": Room(2, "simulator", 2),
    "lowbit.simulator.engine_gemm": Room(2, "simulator", 2),
    "lowbit.simulator.reference": Room(2, "simulator", 2),
    "lowbit.simulator": Room(2, "simulator", 3),
    "lowbit.costmodel": Room(2, "costmodel"),
    "lowbit.models": Room(3, "models"),
    "lowbit.torch": Room(4, "torch"),
    "lowbit.study": Room(5, "study"),
    "lowbit.dashboard": Room(6, "dashboard"),
    "lowbit.cli": Room(7, "cli"),
    "lowbit": Room(8, "lowbit"),
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


def at_call_time(imp: Import, package: str) -> bool:
    """An import inside a function of `<package>.lazy`: resolved when a caller calls it, not when lazy is
    imported, so it adds no import-time edge. lazy (floor 0) may hand out a module of a higher floor
    (lazy.torch_adapter gives lowbit.study lowbit.torch); the floors that count are its callers'."""
    return imp.in_function and imp.source == f"{package}.lazy"


def upward(imports: list[Import], package: str) -> list[Import]:
    """Imports of one's own package that do not point to the same room or down (lazy's deferred
    imports excepted: `at_call_time`)."""
    bad = []
    for imp in imports:
        if not (imp.target == package or imp.target.startswith(package + ".")) or at_call_time(imp, package):
            continue
        src, dst = room_of(imp.source), room_of(imp.target)
        same = src == dst and (src.package != "simulator" or src.sub == dst.sub)
        down = dst.floor < src.floor or (dst.package == src.package and dst.sub < src.sub)
        if not (same or down):
            bad.append(imp)
    return bad


def cycles(names: dict[str, Path], imports: list[Import], package: str = "lowbit") -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), over import-time edges
    (lazy's deferred imports, `at_call_time`, run after every module has loaded)."""
    graph: dict[str, set[str]] = {m: set() for m in names}
    for imp in imports:
        if imp.target in names and imp.target != imp.source and not at_call_time(imp, package):
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
    for folder in ("formats", "simulator/host", "simulator/kernels", "study", "torch"):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "formats/spec.py").write_text("from ..study import runner\n")  # up four floors
    (pkg / "study/runner.py").write_text("from ..formats import spec\n\ndef f():\n    import dask\n")
    (pkg / "simulator/kernels/cpu.py").write_text("from ..host import codec\n")  # up inside the simulator
    (pkg / "simulator/host/codec.py").write_text("from ..kernels import cpu\n")
    # lazy's deferred import of a higher floor that imports lazy back: neither upward nor a cycle
    (pkg / "lazy.py").write_text("def torch_adapter():\n    from . import torch\n")
    (pkg / "torch/__init__.py").write_text("from .. import lazy\n")
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


def _lazy_takers(names: dict[str, Path]) -> list[tuple[str, int, str]]:
    """(module, line, lazy function) for every `from ...lazy import f` in lowbit."""
    out = []
    for module, path in names.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
                full = ".".join(base + [node.module or ""]) if node.level else node.module
                if full == "lowbit.lazy":
                    out += [(module, node.lineno, a.name) for a in node.names]
    return out


def test_lazy_hands_out_higher_floors_only_upstairs(house):
    """lazy's deferred imports of lowbit's own rooms (exempt from the floor check, `at_call_time`) may be
    taken only from a floor above the room they load: whoever imports the lazy function that loads a room
    must sit above that room."""
    names, _ = house
    loads = {}  # lazy function -> the highest floor of the lowbit rooms it imports
    for fn in (n for n in ast.parse(names["lowbit.lazy"].read_text()).body if isinstance(n, ast.FunctionDef)):
        floors = [
            room_of(f"lowbit.{node.module}" if node.module else f"lowbit.{alias.name}").floor
            for node in ast.walk(fn)
            if isinstance(node, ast.ImportFrom) and node.level
            for alias in node.names
        ]
        if floors:
            loads[fn.name] = max(floors)
    assert loads == {
        "torch_adapter": room_of("lowbit.torch").floor,
        "dashboard_package": room_of("lowbit.dashboard").floor,
    }
    takers = [t for t in _lazy_takers(names) if t[2] in loads]
    assert takers, "nobody takes torch_adapter: this test checks nothing"
    bad = [f"{m}:{line} takes lowbit.lazy.{f}" for m, line, f in takers if room_of(m).floor <= loads[f]]
    assert not bad, "\n".join(bad)
