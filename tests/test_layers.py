"""The layers of assay, written down as import contracts (docs/architecture.md).

Every module under ``src/assay`` is parsed with :mod:`ast`; every ``import``
and ``from ... import`` counts, at any depth: a function-level (lazy) import
is still a dependency, and relative imports are resolved. The contracts:

1. Layers (:data:`LAYERS`, top to bottom): a module imports from its own
   layer or a lower one, never from a higher one.
2. Independence (:data:`INDEPENDENT`): the groups of each entry do not import
   each other (the three faces; the data plane and the store).
   :data:`ALLOWED` lists the few documented exceptions, each with its reason.
3. No import cycles between modules (Tarjan's strongly connected components
   over the module graph).
4. Package ``__init__`` files hold public names, not logic
   (:data:`INIT_LOGIC` lists the packages still to be drained).

``if TYPE_CHECKING:`` imports count for every contract: they never run, but
an annotation that names a type of a higher layer is an upward dependency all
the same, and two modules that name each other's types are one concept in two
files (move the shared type down instead). Imports through
``importlib`` with a computed name are not seen; the root package's lazy
public names (``assay.certify`` ...) are of that kind.

A new package is added to :data:`LAYERS` (and, if it needs one, to
:data:`INDEPENDENT` or :data:`ALLOWED`) and nowhere else: a module that
belongs to no layer fails :func:`test_every_module_has_a_layer`.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "assay"

#: Layers, top to bottom. An entry names a package (it and its submodules) or
#: a single module; the longest matching entry wins. The root package
#: ``assay`` matches only ``assay/__init__.py`` (``__version__`` and the lazy
#: public names). Packages not written yet are listed where they will go.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("faces", ("assay.cli", "assay.api", "assay.web")),
    ("domain services", (
        "assay.certification", "assay.demo", "assay.auth", "assay.evidence",
        "assay.registry", "assay.risk", "assay.workflow",
        "assay.monitor", "assay.notify", "assay.impact", "assay.operate", "assay.compliance",
        "assay.integrations",
        "assay.explain",
        "assay.spark",
    )),
    ("policy", ("assay.policy",)),
    ("checks", ("assay.checks",)),
    ("statistics and reports", ("assay.metrics", "assay.report")),
    ("data", ("assay.data", "assay.datasets")),
    ("store", ("assay.store",)),
    ("foundation", ("assay.errors", "assay.config", ROOT)),
)

#: Entries of LAYERS that name no module yet (the packages of the second wave).
PLANNED: frozenset[str] = frozenset()

#: Groups that must not import each other, even when their layers would allow it.
INDEPENDENT: Mapping[str, tuple[tuple[str, ...], ...]] = {
    "faces": (("assay.cli",), ("assay.api",), ("assay.web",)),
    "data plane and store": (
        ("assay.policy", "assay.checks", "assay.metrics", "assay.report",
         "assay.data", "assay.datasets"),
        ("assay.store",),
    ),
}

#: Documented exceptions to INDEPENDENT: (importer, imported, reason); each
#: side names a package or module, as in LAYERS.
ALLOWED: tuple[tuple[str, str, str], ...] = (
    ("assay.cli.server", "assay.api.app", "`assay serve` starts the API app"),
    ("assay.cli.server", "assay.api.sample", "`assay serve` can load the API's sample history"),
    ("assay.api.app", "assay.web", "the API app mounts the web UI"),
    ("assay.web", "assay.api.deps",
     "the pages use the API's authentication and transaction dependencies"),
    ("assay.web", "assay.api.views", "the pages render the API's read models"),
    ("assay.web", "assay.api.queue", "the pages show the API's review queue"),
    ("assay.web", "assay.api.routes_audit", "the audit page runs the API's event query"),
    ("assay.web", "assay.api.routes_certifications",
     "the report page serves the API's stored report"),
    ("assay.web", "assay.api.downloads",
     "the pages hand out uploaded files the way the API does (sandboxed attachments)"),
)

#: Package ``__init__`` files hold public names, not logic: no function or class
#: of their own beyond the lazy ``__getattr__`` / ``__dir__``. Known exceptions,
#: each to be moved out (an entry no longer needed fails the test).
INIT_LOGIC: Mapping[str, str] = {
    "assay.cli": "the typer app and main(); the command modules load lazily from it",
    "assay.web": "install(), which mounts the pages and static files on the API app",
}
LAZY_NAMES = frozenset({"__getattr__", "__dir__"})


@dataclass(frozen=True)
class Import:
    """One imported module, as written in one statement."""

    importer: str
    target: str
    path: Path
    line: int
    statement: str
    lazy: bool  # inside a function
    type_checking: bool  # inside ``if TYPE_CHECKING:``

    def where(self) -> str:
        try:
            path = self.path.relative_to(SRC.parent)
        except ValueError:
            path = self.path
        kind = " (in a function)" if self.lazy else ""
        kind += " (TYPE_CHECKING)" if self.type_checking else ""
        return f"{path}:{self.line}: `{self.statement}`{kind}"


def discover(src: Path, root: str = ROOT) -> dict[str, Path]:
    """Module name -> file, for every ``.py`` file of package ``root`` under ``src``."""
    modules: dict[str, Path] = {}
    for path in sorted((src / root).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str, path: Path, is_package: bool,
                 modules: Mapping[str, Path], root: str) -> None:
        self.module, self.path, self.modules, self.root = module, path, modules, root
        self.package = module if is_package else module.rpartition(".")[0]
        self.depth = 0
        self.type_checking = 0
        self.found: list[Import] = []

    def _known(self, name: str) -> str | None:
        """The module ``name`` names, or the innermost module that contains it."""
        while name and name not in self.modules:
            name = name.rpartition(".")[0]
        return name or None

    def _add(self, node: ast.stmt, target: str | None) -> None:
        if target is None or not (target == self.root or target.startswith(self.root + ".")):
            return
        self.found.append(Import(self.module, target, self.path, node.lineno, ast.unparse(node),
                                 self.depth > 0, self.type_checking > 0))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(node, self._known(alias.name))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")
            base = base[:len(base) - (node.level - 1)]
            base_name = ".".join(base + ([node.module] if node.module else []))
        else:
            base_name = node.module or ""
        for alias in node.names:
            sub = f"{base_name}.{alias.name}"
            self._add(node, sub if sub in self.modules else self._known(base_name))

    def _scope(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _scope

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            self.type_checking += 1
            for stmt in node.body:
                self.visit(stmt)
            self.type_checking -= 1
            for stmt in node.orelse:
                self.visit(stmt)
        else:
            self.generic_visit(node)


def collect_imports(modules: Mapping[str, Path], root: str = ROOT) -> list[Import]:
    """Every import of a module of ``root`` by a module of ``root``, at any depth."""
    found: list[Import] = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        collector = _Collector(name, path, path.name == "__init__.py", modules, root)
        collector.visit(tree)
        found.extend(i for i in collector.found if i.target != name)
    return found


def owner(module: str, entries: Iterable[str], root: str = ROOT) -> str | None:
    """The longest entry naming ``module`` or a package containing it (root: only itself)."""
    best = None
    for entry in entries:
        if (module == entry or (entry != root and module.startswith(entry + "."))) and (
                best is None or len(entry) > len(best)):
            best = entry
    return best


def layer_index(module: str, layers=LAYERS, root: str = ROOT) -> int | None:
    entries = {e: i for i, (_, names) in enumerate(layers) for e in names}
    entry = owner(module, entries, root)
    return None if entry is None else entries[entry]


def layer_violations(imports: Iterable[Import], layers=LAYERS, independent=INDEPENDENT,
                     allowed=ALLOWED, root: str = ROOT) -> list[str]:
    """One message per import that breaks the layer order or an independence rule."""
    out = []
    for imp in imports:
        src, dst = layer_index(imp.importer, layers, root), layer_index(imp.target, layers, root)
        if src is None or dst is None:
            continue  # reported by the layer-assignment test
        if dst < src:
            out.append(f"{imp.where()}\n    {imp.importer} ({layers[src][0]}) imports "
                       f"{imp.target} ({layers[dst][0]}), a higher layer")
            continue
        for rule, groups in independent.items():
            members = {e: g for g, names in enumerate(groups) for e in names}
            a, b = owner(imp.importer, members, root), owner(imp.target, members, root)
            if a is None or b is None or members[a] == members[b]:
                continue
            if any(owner(imp.importer, [x], root) and owner(imp.target, [y], root)
                   for x, y, _ in allowed):
                continue
            out.append(f"{imp.where()}\n    {imp.importer} imports {imp.target}: "
                       f"'{rule}' must not import each other ({a} / {b}); "
                       f"an exception belongs in ALLOWED with its reason")
    return out


def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def import_cycles(imports: Iterable[Import]) -> list[str]:
    """One message per import cycle, with the statements that close it."""
    edges: dict[tuple[str, str], Import] = {}
    for imp in imports:
        edges.setdefault((imp.importer, imp.target), imp)
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    out = []
    for component in strongly_connected(graph):
        members = set(component)
        if len(component) == 1:
            continue
        # shortest path back to the first member, inside the component
        start = component[0]
        paths = {start: [start]}
        queue = [start]
        cycle: list[str] = []
        while queue and not cycle:
            node = queue.pop(0)
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    cycle = [*paths[node], start]
                    break
                if nxt in members and nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    queue.append(nxt)
        steps = "\n".join(f"    {edges[(a, b)].where()}" for a, b in itertools.pairwise(cycle))
        extra = "" if len(component) == len(cycle) - 1 else \
            f"\n    (the cycle belongs to a knot of {len(component)}: {', '.join(component)})"
        out.append(f"import cycle {' -> '.join(cycle)}\n{steps}{extra}")
    return out


# -- the contracts on assay itself ------------------------------------------------------------

MODULES = discover(SRC)
IMPORTS = collect_imports(MODULES)


def test_every_module_has_a_layer():
    missing = sorted(m for m in MODULES if layer_index(m) is None)
    if missing:
        pytest.fail("modules that belong to no layer (add their package to LAYERS in "
                    "tests/test_layers.py and to docs/architecture.md):\n  "
                    + "\n  ".join(missing), pytrace=False)


def test_every_layer_entry_names_a_module():
    listed = [e for _, names in LAYERS for e in names]
    assert len(listed) == len(set(listed)), "a package is listed in two layers"
    unknown = sorted(e for e in listed if e not in MODULES and e not in PLANNED)
    assert not unknown, f"LAYERS names modules that do not exist (nor in PLANNED): {unknown}"
    built = sorted(PLANNED & set(MODULES))
    assert not built, f"planned packages now exist, remove them from PLANNED: {built}"
    for groups in INDEPENDENT.values():
        for entry in (e for group in groups for e in group):
            assert entry in listed, f"INDEPENDENT names {entry}, which is not in LAYERS"


def test_nothing_imports_upward_and_independent_parts_stay_apart():
    problems = layer_violations(IMPORTS)
    if problems:
        pytest.fail("layer contract broken (docs/architecture.md, Layers):\n"
                    + "\n".join(problems), pytrace=False)


def test_no_import_cycles():
    problems = import_cycles(IMPORTS)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def init_logic(modules: Mapping[str, Path]) -> dict[str, list[str]]:
    """Package -> the functions and classes its ``__init__.py`` defines itself."""
    out = {}
    for name, path in modules.items():
        if path.name != "__init__.py":
            continue
        defs = [f"{n.name} (line {n.lineno})" for n in ast.parse(path.read_text("utf-8")).body
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                and n.name not in LAZY_NAMES]
        if defs:
            out[name] = defs
    return out


def test_package_inits_hold_public_names_not_logic():
    found = init_logic(MODULES)
    new = {k: v for k, v in found.items() if k not in INIT_LOGIC}
    assert not new, ("package __init__ files that define logic (move it into a module of the "
                     f"package and import the public names): {new}")
    stale = sorted(set(INIT_LOGIC) - set(found))
    assert not stale, f"INIT_LOGIC lists packages whose __init__ holds no logic now: {stale}"


def test_every_exception_is_still_used():
    for importer, imported, reason in ALLOWED:
        assert reason
        used = [i for i in IMPORTS if owner(i.importer, [importer]) and owner(i.target, [imported])]
        assert used, f"ALLOWED entry {importer} -> {imported} matches no import: remove it"


# -- the checker itself, on small packages written for the purpose --------------------------


def _package(tmp_path: Path, files: Mapping[str, str]) -> dict[str, Path]:
    for name, text in files.items():
        path = tmp_path / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return discover(tmp_path, "pkg")


TOY_LAYERS = (("top", ("pkg.top",)), ("low", ("pkg.low",)), ("base", ("pkg",)))


def test_checker_resolves_relative_lazy_and_type_checking_imports(tmp_path):
    modules = _package(tmp_path, {
        "__init__.py": "",
        "top/__init__.py": "from .a import f\n",
        "top/a.py": "from ..low import b\nfrom . import c\n\ndef f():\n    import pkg.low.b\n",
        "top/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                    "    from pkg.low.b import B\nelse:\n    import os\n",
        "low/__init__.py": "",
        "low/b.py": "import json\nfrom pkg import low\nfrom pkg.low.b import thing\n",
    })
    found = {(i.importer, i.target, i.line, i.lazy, i.type_checking)
             for i in collect_imports(modules, "pkg")}
    assert found == {
        ("pkg.top", "pkg.top.a", 1, False, False),
        ("pkg.top.a", "pkg.low.b", 1, False, False),
        ("pkg.top.a", "pkg.top.c", 2, False, False),
        ("pkg.top.a", "pkg.low.b", 5, True, False),
        ("pkg.top.c", "pkg.low.b", 3, False, True),
        ("pkg.low.b", "pkg.low", 2, False, False),
    }


def test_checker_names_the_upward_import_with_file_and_line(tmp_path):
    modules = _package(tmp_path, {
        "__init__.py": "", "top/__init__.py": "", "low/__init__.py": "",
        "top/a.py": "X = 1\n",
        "low/b.py": "import json\n\n\ndef f():\n    from pkg.top.a import X\n    return X\n",
    })
    problems = layer_violations(collect_imports(modules, "pkg"), TOY_LAYERS, {}, (), "pkg")
    assert len(problems) == 1
    assert "pkg/low/b.py:5: `from pkg.top.a import X` (in a function)" in problems[0]
    assert "pkg.low.b (low) imports pkg.top.a (top), a higher layer" in problems[0]


def test_checker_counts_type_checking_imports(tmp_path):
    modules = _package(tmp_path, {
        "__init__.py": "", "top/__init__.py": "", "low/__init__.py": "",
        "top/a.py": "from pkg.low.b import B\nA = 1\n",
        "low/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                    "    from pkg.top.a import A\nB = 1\n",
    })
    imports = collect_imports(modules, "pkg")
    problems = layer_violations(imports, TOY_LAYERS, {}, (), "pkg")
    assert len(problems) == 1 and "pkg/low/b.py:3: `from pkg.top.a import A` (TYPE_CHECKING)" \
        in problems[0]
    cycles = import_cycles(imports)
    assert len(cycles) == 1 and cycles[0].startswith("import cycle pkg.low.b -> pkg.top.a")


def test_checker_keeps_independent_groups_apart_unless_allowed(tmp_path):
    modules = _package(tmp_path, {
        "__init__.py": "", "top/__init__.py": "", "low/__init__.py": "",
        "top/a.py": "", "top/b.py": "from pkg.top import a\n",
    })
    imports = collect_imports(modules, "pkg")
    rules = {"top parts": (("pkg.top.a",), ("pkg.top.b",))}
    problems = layer_violations(imports, TOY_LAYERS, rules, (), "pkg")
    assert len(problems) == 1 and "'top parts' must not import each other" in problems[0]
    assert "pkg/top/b.py:1" in problems[0]
    allowed = (("pkg.top.b", "pkg.top.a", "b extends a"),)
    assert layer_violations(imports, TOY_LAYERS, rules, allowed, "pkg") == []


def test_checker_reports_a_cycle_with_each_import_that_closes_it(tmp_path):
    modules = _package(tmp_path, {
        "__init__.py": "",
        "a.py": "from pkg import b\n",
        "b.py": "import os\n\n\ndef g():\n    from pkg.c import h\n",
        "c.py": "from pkg.a import *\n",
        "d.py": "from pkg import a\n",
    })
    problems = import_cycles(collect_imports(modules, "pkg"))
    assert len(problems) == 1
    assert problems[0].splitlines() == [
        "import cycle pkg.a -> pkg.b -> pkg.c -> pkg.a",
        f"    {tmp_path}/pkg/a.py:1: `from pkg import b`",
        f"    {tmp_path}/pkg/b.py:5: `from pkg.c import h` (in a function)",
        f"    {tmp_path}/pkg/c.py:1: `from pkg.a import *`",
    ]


def test_checker_finds_logic_in_package_inits(tmp_path):
    modules = _package(tmp_path, {
        "__init__.py": "def __getattr__(name):\n    raise AttributeError(name)\n",
        "sub/__init__.py": "from .impl import f\n\n\nclass Thing:\n    pass\n",
        "sub/impl.py": "def f():\n    pass\n",
    })
    assert init_logic(modules) == {"pkg.sub": ["Thing (line 4)"]}


def test_tarjan_finds_every_knot():
    graph = {"a": ["b"], "b": ["a", "c"], "c": ["d"], "d": ["c", "e"], "e": [], "f": ["f"]}
    knots = sorted(c for c in strongly_connected(graph) if len(c) > 1)
    assert knots == [["a", "b"], ["c", "d"]]


@pytest.mark.parametrize("module,layer", [
    ("assay", "foundation"), ("assay.errors", "foundation"),
    ("assay.cli.server", "faces"), ("assay.registry.tables", "domain services"),
    ("assay.metrics.drift", "statistics and reports"), ("assay.store.audit", "store"),
    ("assay.unknown", None),
])
def test_layer_lookup(module, layer):
    index = layer_index(module)
    assert (None if index is None else LAYERS[index][0]) == layer
