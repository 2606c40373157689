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
    (tmp_path / "datasets" / "a.py").write_text("import seqrl.envs.factory\nfrom seqrl.core.errors import SeqRLError\n")
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


def test_no_import_cycles_of_any_length():
    """No cycle among seqrl's modules (function-local imports included), of any length."""
    graph = import_graph()
    assert graph.cycles(graph.module_edges(REPO)) == []
    # the check itself sees a cycle of three and tells it apart from a chain
    assert graph.cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [("a", "b", "c")]
    assert graph.cycles({"a": {"b"}, "b": {"c"}}) == []


def test_no_room_imports_a_room_above_it():
    """What acts never imports training or the programs; training never imports the programs; data and envs
    import only the core (scripts/import_graph.py's ROOMS and MAY_IMPORT)."""
    graph = import_graph()
    assert graph.upward_imports(REPO) == []
    assert graph.room_of("seqrl.agents.model") == "agents" and graph.room_of("seqrl.agents.backbones.mingru") == "agents"
    assert graph.room_of("seqrl.training.trainer") == "training" and graph.room_of("seqrl.grid") == "programs"
    assert graph.room_of("seqrl.core.errors") == "core" and graph.room_of("seqrl") == "core"


def test_the_room_check_sees_an_upward_import(tmp_path):
    """A copy of the layout where the model imports the trainer and the data: both are reported."""
    import shutil

    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    for folder in ("agents", "training", "datasets", "seqrl/core"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "seqrl" / "__init__.py").write_text("")
    (tmp_path / "training" / "trainer.py").write_text("from seqrl.agents.model import M\n")
    (tmp_path / "agents" / "model.py").write_text(
        "from seqrl.core import errors\ndef f():\n    from seqrl.training.trainer import T\nfrom seqrl.datasets import x\n")
    graph = import_graph()
    assert graph.upward_imports(tmp_path) == [
        "agents/model.py:3 seqrl.agents.model -> seqrl.training.trainer (agents -> training)",
        "agents/model.py:4 seqrl.agents.model -> seqrl.datasets (agents -> datasets)",
    ]
    assert graph.cycles(graph.module_edges(tmp_path)) == [("seqrl.agents.model", "seqrl.training.trainer")]


def test_the_acting_side_loads_no_data_library():
    """``import seqrl.agents`` (the model, its policies and checkpoints) loads neither h5py nor minari."""
    code = "import sys, seqrl.agents\nprint(sorted(m for m in ('h5py', 'minari') if m in sys.modules))"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and p.stdout.strip() == "[]", p.stdout + p.stderr
