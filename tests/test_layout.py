"""The package layout the issue asks for, read from the source: datasets/ and envs/ never import each other
(module-level or function-local imports, absolute or relative), and loading data never imports gymnasium."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, load_module

SEPARATE = {"datasets": "envs", "envs": "datasets"}  # folder -> the folder it may not import


def import_graph():
    """scripts/import_graph.py, whose ``imports_of`` reads a file's imports."""
    return load_module(REPO / "scripts" / "import_graph.py", "import_graph")


def crossing_imports(root: Path, folder: str, other: str) -> list[str]:
    """``file:line -> target`` for every import under ``root/folder`` (any depth) of ``other``, whether
    spelled seqrl.<other>, <other> (the folder name, as seen from the repository root) or relative."""
    graph = import_graph()
    found = []
    for path in sorted((root / folder).rglob("*.py")):
        parts = path.relative_to(root / folder).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        module = ".".join(["seqrl", folder, *(parts[:-1] if is_package else parts)])
        for imp in graph.imports_of(path, module, is_package):
            if any(imp.target == p or imp.target.startswith(p + ".") for p in (f"seqrl.{other}", other)):
                found.append(f"{path.relative_to(root)}:{imp.line} -> {imp.target}")
    return found


@pytest.mark.parametrize("folder", sorted(SEPARATE))
def test_datasets_and_envs_do_not_import_each_other(folder):
    assert crossing_imports(REPO, folder, SEPARATE[folder]) == []


def test_the_import_check_sees_every_spelling(tmp_path):
    """Each way of importing the other package is caught (so the test above can fail)."""
    (tmp_path / "datasets" / "sub").mkdir(parents=True)
    (tmp_path / "datasets" / "__init__.py").write_text("from .trajectories import DatasetInfo\n")
    (tmp_path / "datasets" / "a.py").write_text("import seqrl.envs.factory\nfrom seqrl.errors import SeqRLError\n")
    (tmp_path / "datasets" / "b.py").write_text("def f():\n    from seqrl.envs import make_env\n    return make_env\n")
    (tmp_path / "datasets" / "c.py").write_text("from ..envs import factory\n")
    (tmp_path / "datasets" / "sub" / "d.py").write_text("from ...envs.episodes import Episode\nimport envs\n")
    assert crossing_imports(tmp_path, "datasets", "envs") == [
        "datasets/a.py:1 -> seqrl.envs.factory",
        "datasets/b.py:2 -> seqrl.envs",
        "datasets/c.py:1 -> seqrl.envs",
        "datasets/sub/d.py:1 -> seqrl.envs.episodes",
        "datasets/sub/d.py:2 -> envs",
    ]


def test_loading_data_does_not_import_gymnasium(tmp_path):
    """``import seqrl.datasets`` and reading a D4RL-layout file leave gymnasium (and so MuJoCo) unloaded.
    (Minari data is another matter: ``import minari`` imports gymnasium itself.)"""
    code = (
        "import sys, numpy as np\n"
        "import seqrl.datasets as d\n"
        "assert 'gymnasium' not in sys.modules, 'import seqrl.datasets imported gymnasium'\n"
        f"p = {str(tmp_path / 'hopper-tiny-v2.hdf5')!r}\n"
        "n = 12\n"
        "d.write_d4rl_file(p, np.zeros((n, 11)), np.zeros((n, 3)), np.ones(n), np.zeros(n, bool), np.arange(n) == n - 1)\n"
        "ds = d.resolve_dataset(p, 'hopper', d.d4rl.default_cache_dir(), allow_download=False).data\n"
        "assert ds.num_transitions == n and ds.info.env_id\n"
        "assert 'gymnasium' not in sys.modules, 'loading a D4RL file imported gymnasium'\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr


def test_module_names_say_one_thing():
    """No two modules of the package share a name (the repository's train_offline.py / evaluate.py / export.py
    only call the programs in seqrl/cli/ and are not part of the package)."""
    from collections import Counter

    folders = ("agents", "envs", "datasets", "seqrl")
    names = Counter(p.name for f in folders for p in (REPO / f).rglob("*.py") if p.name != "__init__.py")
    assert [n for n, c in names.items() if c > 1] == []


def test_no_import_cycles_between_packages():
    """scripts/import_graph.py finds no cycle between seqrl's packages (function-local imports included)."""
    graph = import_graph()
    found = graph.cycles({a: set(b) for a, b in graph.package_edges(REPO).items()})
    assert found == []
    assert graph.cycles({"a": {"b"}, "b": {"a"}}) == [("a", "b")]  # the check itself sees a cycle
