#!/usr/bin/env python
"""The import picture of seqrl: which of its packages import which, and what a bare import loads.

    python scripts/import_graph.py                 # this checkout
    python scripts/import_graph.py --root DIR      # another checkout (e.g. `git archive main` unpacked)
    python scripts/import_graph.py --no-runtime    # the static part only

Static part: every ``import`` statement (module level and inside functions, read with ``ast``, nothing
executed) of the modules that pyproject.toml's ``[tool.setuptools.package-dir]`` installs under ``seqrl``,
grouped by package, with the root scripts (train_offline.py, ...) beside them. An edge written
``pkg*`` is made only by imports inside functions. Cycles between packages are listed.

Runtime part: for each package a fresh interpreter imports it from ``--root`` and reports which of the
heavy third-party packages (gymnasium, mujoco, torch, minari, h5py) that import loaded.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

HEAVY = ("gymnasium", "mujoco", "torch", "minari", "h5py")


@dataclass(frozen=True)
class Import:
    """One import statement of one module, resolved to an absolute module name."""

    source: str  # the importing module, e.g. seqrl.datasets.d4rl
    path: Path  # its file
    line: int
    target: str  # the imported module (or the package whose name is imported), e.g. seqrl.envs.tasks
    local: bool  # inside a function (runs when the function does, not at import)


def package_dirs(root: Path) -> dict[str, Path]:
    """Package name -> folder, from pyproject.toml (``package-dir``, else the package name as a path)."""
    conf = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs = conf.get("package-dir", {})
    return {pkg: root / dirs.get(pkg, pkg.replace(".", "/")) for pkg in conf["packages"]}


def modules(root: Path) -> dict[str, Path]:
    """Module name -> file for every module of every package (a package's own files, not its subpackages')."""
    out = {}
    for pkg, folder in package_dirs(root).items():
        for path in sorted(folder.glob("*.py")):
            out[pkg if path.stem == "__init__" else f"{pkg}.{path.stem}"] = path
    return out


def _function_lines(tree: ast.AST) -> set[int]:
    """Line numbers of the import statements inside a function (at any depth)."""
    lines = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            lines |= {n.lineno for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))}
    return lines


def imports_of(path: Path, source: str, is_package: bool, known: set[str] = frozenset()) -> list[Import]:
    """Every import statement of one file, relative ones resolved against ``source`` (its module name).

    ``from pkg import name`` counts as importing ``pkg.name`` when that is a module in ``known``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    local = _function_lines(tree)
    here = source if is_package else source.rpartition(".")[0]  # the package relative imports start from
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = here.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        out += [Import(source, path, node.lineno, t, node.lineno in local) for t in dict.fromkeys(targets)]
    return out


def node_of(module: str, packages: list[str]) -> str | None:
    """The node a module belongs to: its subpackage (``seqrl.agents``, ...), or for a module of the core
    package itself its own name (``seqrl.training.config``: the core is a set of independent modules); None outside."""
    found = [p for p in packages if module == p or module.startswith(p + ".")]
    if not found:
        return None
    pkg = max(found, key=len)
    if pkg == "seqrl" and module != "seqrl":
        return ".".join(module.split(".")[:2])
    return pkg


def all_imports(root: Path) -> list[Import]:
    """The imports of every seqrl module and of the root scripts (named by file, e.g. ``train_offline.py``)."""
    mods = modules(root)
    known = set(mods)
    out = []
    for name, path in mods.items():
        out += imports_of(path, name, path.stem == "__init__", known)
    for path in sorted(root.glob("*.py")):
        out += imports_of(path, path.name, False, known)
    return out


def cycles(edges: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """Every cycle of any length, as the strongly connected components of more than one node (Tarjan), each
    sorted; a node importing itself is not a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[tuple[str, ...]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(tuple(sorted(component)))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(set(edges) | {w for ws in edges.values() for w in ws}):
        if v not in index:
            visit(v)
    return sorted(found)


# The rooms of seqrl, lowest first, and the rooms each may import (besides itself): what acts (agents) never
# imports training or the programs; the model's data types come from core, so agents never imports the data.
ROOMS: dict[str, tuple[str, ...]] = {
    "core": ("seqrl", "seqrl.core"),
    "datasets": ("seqrl.datasets",),
    "envs": ("seqrl.envs",),
    "runner": ("seqrl.runner",),
    "agents": ("seqrl.agents",),
    "training": ("seqrl.training",),
    "programs": ("seqrl.cli", "seqrl.grid", "seqrl.results", "seqrl.study"),
}
MAY_IMPORT: dict[str, set[str]] = {
    "core": set(),
    "datasets": {"core"},
    "envs": {"core"},
    "runner": {"core"},
    "agents": {"core", "envs", "runner"},
    "training": {"core", "datasets", "envs", "agents"},
    "programs": {"core", "datasets", "envs", "runner", "agents", "training"},
}


def room_of(module: str) -> str | None:
    """The room a module of seqrl belongs to (the longest matching prefix); ``programs`` for any other module
    directly under ``seqrl``; None outside seqrl."""
    best = None
    for room, prefixes in ROOMS.items():
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > len(best[1])):
                best = (room, p)
    if best and best[1] == "seqrl" and module != "seqrl":
        return "programs"  # a module of the root package not given a room of its own
    return best[0] if best else None


def upward_imports(root: Path) -> list[str]:
    """``file:line source -> target (room -> room)`` for every import of a room it may not import."""
    out = []
    for imp in sorted(all_imports(root), key=lambda i: (str(i.path), i.line)):
        src, dst = room_of(imp.source), room_of(imp.target)
        if src is None or dst is None or dst == src or dst in MAY_IMPORT[src]:
            continue
        out.append(f"{imp.path.relative_to(root)}:{imp.line} {imp.source} -> {imp.target} ({src} -> {dst})")
    return out


def module_edges(root: Path) -> dict[str, set[str]]:
    """module -> the seqrl modules it imports (at module level or inside functions)."""
    known = set(modules(root))
    edges: dict[str, set[str]] = {}
    for imp in all_imports(root):
        if imp.source in known and imp.target in known and imp.target != imp.source:
            edges.setdefault(imp.source, set()).add(imp.target)
    return edges


def room_lines(root: Path) -> dict[str, int]:
    """Lines of code per room (the files of its modules)."""
    out: dict[str, int] = {}
    for name, path in modules(root).items():
        room = room_of(name) or "-"
        out[room] = out.get(room, 0) + len(path.read_text().splitlines())
    return out


def package_edges(root: Path) -> dict[str, dict[str, bool]]:
    """node (package, core module or root script) -> the nodes it imports -> whether only inside functions."""
    packages = list(package_dirs(root))
    edges: dict[str, dict[str, bool]] = {}
    for imp in all_imports(root):
        src = node_of(imp.source, packages) or imp.source
        dst = node_of(imp.target, packages)
        if dst is None or dst == src:
            continue
        row = edges.setdefault(src, {})
        row[dst] = row.get(dst, True) and imp.local
    return edges


def static_report(root: Path) -> str:
    packages = list(package_dirs(root))
    edges = package_edges(root)
    nodes = sorted({node_of(m, packages) for m in modules(root)} - {None}, key=lambda n: (n.count(".") == 1 and
                   n not in packages, n))
    lines = [f"Static imports under {root} (module level and inside functions; name* = only inside functions;",
             "the core package seqrl is shown module by module)", ""]
    width = max(map(len, [*nodes, *edges])) + 1
    for src in [*nodes, *sorted(set(edges) - set(nodes))]:
        row = edges.get(src, {})
        subs = [d + ("*" if row[d] else "") for d in sorted(row) if d in packages]
        core = [d.split(".", 1)[1] + ("*" if row[d] else "") for d in sorted(row) if d not in packages]
        parts = subs + ([f"seqrl.{{{', '.join(core)}}}"] if core else [])
        lines.append(f"{src:<{width}}-> {', '.join(parts) or '-'}")
    found = cycles({a: set(b) for a, b in edges.items()})
    lines += ["", "Cycles between packages: " + ("; ".join(" <-> ".join(c) for c in found) or "none")]
    for component in found:
        for imp in all_imports(root):
            src, dst = node_of(imp.source, packages), node_of(imp.target, packages)
            if src in component and dst in component and src != dst:
                where = "inside a function" if imp.local else "module level"
                lines.append(f"  {imp.path.relative_to(root)}:{imp.line} imports {imp.target} ({where})")
    module_cycles = cycles(module_edges(root))
    lines.append("Cycles between modules: " + ("; ".join(" -> ".join(c) for c in module_cycles) or "none"))
    upward = upward_imports(root)
    lines += ["", "Rooms (lowest first; each may import those listed): " + "; ".join(
        f"{r} <- {', '.join(sorted(MAY_IMPORT[r])) or 'nothing'}" for r in ROOMS)]
    lines.append("Lines per room: " + ", ".join(f"{r} {n:,}" for r, n in sorted(room_lines(root).items(), key=lambda x: list(ROOMS).index(x[0]) if x[0] in ROOMS else 99)))
    lines.append("Imports against the rooms' order: " + (str(len(upward)) if upward else "none"))
    lines += [f"  {u}" for u in upward]
    return "\n".join(lines)


_PROBE = """
import importlib, importlib.util, json, sys
sys.dont_write_bytecode = True
root, package = sys.argv[1], sys.argv[2]
# seqrl's subpackages live in root/<folder> (package-dir): search root/seqrl and root for them
spec = importlib.util.spec_from_file_location("seqrl", root + "/seqrl/__init__.py",
                                              submodule_search_locations=[root + "/seqrl", root])
mod = importlib.util.module_from_spec(spec)
sys.modules["seqrl"] = mod
spec.loader.exec_module(mod)
importlib.import_module(package)
print(json.dumps(sorted(m for m in sys.modules if "." not in m)))
"""


def runtime_report(root: Path) -> str:
    lines = ["Runtime: what `import <package>` loads in a fresh interpreter (of " + ", ".join(HEAVY) + ")", ""]
    packages = list(package_dirs(root))
    width = max(map(len, packages)) + 1
    for pkg in packages:
        p = subprocess.run([sys.executable, "-c", _PROBE, str(root), pkg], capture_output=True, text=True, cwd=root)
        if p.returncode:
            lines.append(f"{pkg:<{width}}   import failed: {p.stderr.strip().splitlines()[-1]}")
            continue
        loaded = set(json.loads(p.stdout.splitlines()[-1]))
        lines.append(f"{pkg:<{width}}-> {', '.join(h for h in HEAVY if h in loaded) or '(none of them)'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1],
                    help="the checkout to read (the folder holding pyproject.toml; default: this one)")
    ap.add_argument("--no-runtime", action="store_true", help="skip the fresh-interpreter imports")
    args = ap.parse_args(argv)
    root = args.root.resolve()
    if not (root / "pyproject.toml").is_file():
        print(f"error: {root} holds no pyproject.toml; pass --root the folder of a seqrl checkout.", file=sys.stderr)
        return 2
    print(static_report(root))
    if not args.no_runtime:
        print()
        print(runtime_report(root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
