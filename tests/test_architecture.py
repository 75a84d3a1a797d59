"""docs/ARCHITECTURE.md stays true: its import graph is the code's, and the layers point one way.

The graph is read from the source with ``ast`` (module-level and function-level imports alike:
a lazy import is still a dependency), and compared with the ``imports`` block of the page.
"""

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "fastbp"
MAX_LINES = 450


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(dotted):
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def real_graph():
    graph = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from package import module` depends on the module, not on the package
                names = [
                    f"{node.module}.{a.name}" if is_module(f"{node.module}.{a.name}") else node.module
                    for a in node.names
                ]
            else:
                continue
            imported |= {name for name in names if name.startswith("fastbp")}
        name = module_name(path)
        graph[name] = sorted(imported - {name})
    return graph


def documented_graph():
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    block = re.search(r"```imports\n(.*?)```", text, re.S).group(1)
    graph = {}
    for line in block.strip().splitlines():
        module, _, imports = line.partition(":")
        graph[qualified(module)] = sorted(qualified(m) for m in imports.split(",") if m.strip())
    return graph


def qualified(short):
    """``spec`` → ``fastbp.spec``; ``fastbp`` (the package itself) stays."""
    short = short.strip()
    return short if short == "fastbp" else f"fastbp.{short}"


def test_the_documented_import_graph_is_the_real_one():
    documented, real = documented_graph(), real_graph()
    assert sorted(documented) == sorted(real), "modules listed in docs/ARCHITECTURE.md differ from fastbp/"
    wrong = {m: (documented[m], real[m]) for m in real if documented[m] != real[m]}
    assert not wrong, f"docs/ARCHITECTURE.md says (documented, real): {wrong}"


def test_layers_point_one_way():
    """A module imports only modules of lower layers (the page's layer table), never upwards."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    layers = {}
    for number, modules in re.findall(r"^\| (\d+) \| ([^|]+) \|", text, re.M):
        for module in re.findall(r"`([\w.]+)`", modules):
            layers[qualified(module)] = int(number)
    graph = real_graph()
    assert set(layers) == set(graph), set(layers) ^ set(graph)
    upward = [(m, i) for m, imports in graph.items() for i in imports if layers[i] >= layers[m]]
    assert not upward, f"imports that do not point down a layer: {upward}"


def test_no_module_is_a_catch_all():
    """At most 450 lines a module as ruff formats it (``make test`` checks the formatting), and
    none kept short by exempting lines from the formatter."""
    sizes = {module_name(p): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert max(sizes.values()) <= MAX_LINES, {m: n for m, n in sizes.items() if n > MAX_LINES}
    skipped = [module_name(p) for p in PACKAGE.rglob("*.py") if "fmt: " + "skip" in p.read_text()]
    assert not skipped, skipped


def module_level_imports(path):
    """The fastbp modules ``path`` imports at module level (what its compiled functions can inline)."""
    imported = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fastbp"):
            imported |= {
                f"{node.module}.{a.name}" if is_module(f"{node.module}.{a.name}") else node.module
                for a in node.names
            }
        elif isinstance(node, ast.Import):
            imported |= {a.name for a in node.names if a.name.startswith("fastbp")}
    return imported


def test_numba_cache_key_covers_every_inlined_source():
    """A cached kernel is rebuilt when a file it inlines changes only if that file is in the
    cache key (fastbp._numba_cache): every module a ``cache=True`` module imports at module
    level and that defines ``inline="always"`` functions must be one of its shared sources."""
    from fastbp import _numba_cache

    shared = {f"fastbp.{name[:-3]}" for name in _numba_cache._SHARED_SOURCES}
    inlining = {module_name(p) for p in PACKAGE.rglob("*.py") if 'inline="always"' in p.read_text()}
    missing = {}
    for path in PACKAGE.rglob("*.py"):
        if "cache=True" in path.read_text():
            needed = (module_level_imports(path) & inlining) - shared
            if needed:
                missing[module_name(path)] = sorted(needed)
    assert not missing, missing
    assert {"fastbp.model", "fastbp.fastmath", "fastbp.kernels_diagnostics", "fastbp.compile_time"} <= shared
