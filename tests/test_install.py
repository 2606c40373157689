"""A non-editable install works: the wheel's entry points run from outside the repository.

The wheel is built from this checkout and installed, without its dependencies, into a fresh venv
that sees the test venv's packages (torch, gymnasium, ...) through a ``.pth`` line: the seqrl it
imports is the wheel's (checked), never the working tree's. Every command runs in a temporary
directory, so nothing of the repository is on the path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
import yaml

from helpers import REPO

ENTRY_POINTS = ("seqrl-train", "seqrl-evaluate", "seqrl-export", "seqrl-grid", "seqrl-results", "seqrl-study", "seqrl-make-dataset")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/ of a venv holding seqrl installed from a freshly built wheel."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"  # a copy: building writes build/ and *.egg-info next to the sources
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "runs", "*.egg-info",
                                                             "__pycache__", ".pytest_cache", "results"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-w", str(root / "dist")],
        capture_output=True, text=True, timeout=600,
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    (wheel,) = (root / "dist").glob("seqrl-*.whl")
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "deps_from_test_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    inst = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", str(wheel)],
                          capture_output=True, text=True, timeout=600)
    assert inst.returncode == 0, inst.stdout[-2000:] + inst.stderr[-2000:]
    return env_dir / "bin"


def run(bin_dir: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def test_the_wheel_is_what_runs(installed: Path, tmp_path: Path) -> None:
    p = run(installed, [str(installed / "python"), "-c",
                        "import seqrl, seqrl.agents.backbones as b; print(seqrl.__file__); print(b.__file__)"], tmp_path)
    assert p.returncode == 0, p.stderr
    assert all(str(installed.parent) in line for line in p.stdout.split()), p.stdout  # not the working tree
    assert str(REPO) not in p.stdout


@pytest.mark.parametrize("command", ENTRY_POINTS)
def test_entry_point_help(installed: Path, tmp_path: Path, command: str) -> None:
    p = run(installed, [str(installed / command), "--help"], tmp_path)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert "usage" in p.stdout.lower()


def test_native_kernel_source_is_in_the_wheel(installed: Path, tmp_path: Path) -> None:
    p = run(installed, [str(installed / "python"), "-c",
                        "from pathlib import Path; import seqrl.agents.backbones.native_scan as n; "
                        "print(Path(n.__file__).with_name('native_scan.c').is_file())"], tmp_path)
    assert p.returncode == 0 and p.stdout.strip() == "True", p.stdout + p.stderr


def test_tiny_grid_and_results_from_the_wheel(installed: Path, data_root: Path, tmp_path: Path) -> None:
    """seqrl-grid trains (through the installed training entry point), seqrl-results tabulates."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({"env": "hopper", "dataset": "test/hopper/medium-v0", "steps": 2, "eval_every": 2,
                                   "eval_episodes": 1, "batch_size": 4, "warmup_steps": 1, "log_every": 1,
                                   "device": "cpu", "model": {"context_len": 3, "width": 8, "n_layers": 1},
                                   "eval_targets": [100.0]}))
    runs = tmp_path / "runs"
    p = run(installed, [str(installed / "seqrl-grid"), "--configs", str(cfg), "--backbones", "mingru", "--seeds", "0",
                        "--runs-root", str(runs)], tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    (run_dir,) = [d for d in runs.iterdir() if d.is_dir()]
    assert (run_dir / "done.json").is_file(), (run_dir / "train.log").read_text()[-3000:]
    p = run(installed, [str(installed / "seqrl-results"), str(runs), "--out", str(tmp_path / "results")], tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert (tmp_path / "results" / "results.md").is_file()
