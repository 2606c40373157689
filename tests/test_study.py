"""The study workflow: a grid of runs (skipping finished ones), study files, and a study run, resumed and collected."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import REPO
from test_faults import ended, wait_for

from seqrl.results import main as results_main
from seqrl.study import main as study_main


def tiny_configs(tmp_path):
    common = {"env": "hopper", "dataset": "medium", "steps": 4, "eval_every": 4, "eval_episodes": 1, "batch_size": 8,
              "warmup_steps": 2, "log_every": 2, "device": "cpu"}
    dt, bc = tmp_path / "tiny.yaml", tmp_path / "tiny-bc.yaml"
    dt.write_text(yaml.safe_dump({**common, "model": {"context_len": 5, "width": 16, "n_layers": 1}}))
    bc.write_text(yaml.safe_dump({**common, "agent": "bc", "bc": {"hidden": [16]}}))
    return dt, bc


def test_grid_runs_each_cell_once_and_skips_finished(data_root, tmp_path):
    dt, bc = tiny_configs(tmp_path)
    cmd = [sys.executable, "-m", "seqrl.grid", "--configs", str(dt), str(bc), "--backbones", "transformer", "mingru",
           "--seeds", "0", "--jobs", "2", "--runs-root", str(tmp_path / "runs")]
    stale = tmp_path / "runs" / "hopper__medium__mingru__0__1"  # an attempt killed before its first checkpoint
    stale.mkdir(parents=True)
    (stale / "train.log").write_text("killed\n")
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=os.environ.copy(), timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "(hopper__medium__mingru__0__1 stopped before its first checkpoint; left as it was)" in p.stdout
    assert (stale / "train.log").read_text() == "killed\n"
    assert all(line.startswith("[grid] ") for line in p.stdout.splitlines())  # two jobs' lines never interleave
    assert [line for line in p.stdout.splitlines() if "progress" in line] == [f"[grid] progress: {k}/3 runs" for k in (1, 2, 3)]
    dirs = sorted(d.name for d in (tmp_path / "runs").iterdir() if d.is_dir() and d != stale)
    assert [d.rsplit("__", 1)[0] for d in dirs] == ["hopper__medium__bc__0", "hopper__medium__mingru__0",
                                                    "hopper__medium__transformer__0"]  # BC: one run, no backbone
    assert all((tmp_path / "runs" / d / "done.json").is_file() for d in dirs)
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=os.environ.copy(), timeout=600)
    assert p.returncode == 0 and p.stdout.count("[grid] skip") == 3
    # --until: seed 1's runs are expected to take what seed 0's took (+10% and a minute): none fits in 0 minutes
    p = subprocess.run([*cmd[:cmd.index("--seeds")], "--seeds", "1", *cmd[cmd.index("--jobs"):], "--until", "+0"],
                       cwd=REPO, capture_output=True, text=True, env=os.environ.copy(), timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("[grid] not started: hopper__medium__") == 3 and "this task on this CPU" in p.stdout
    assert "0 of 3 runs finished; 3 not started (--until" in p.stdout
    assert yaml.safe_load((tmp_path / "runs" / "grid.yaml").read_text())["not_started"] == [
        "hopper__medium__transformer__1__*", "hopper__medium__mingru__1__*", "hopper__medium__bc__1__*"]
    assert len([d for d in (tmp_path / "runs").iterdir() if d.is_dir()]) == 4  # nothing new was started


def test_grid_until_estimates_from_the_most_similar_finished_runs(tmp_path):
    import datetime as dt

    from seqrl.core.errors import SeqRLError
    from seqrl.grid import Job, expected_seconds, parse_until
    from seqrl.training.rundir import RunName

    job = Job(Path("c.yaml"), "mingru", 2, [])
    job.__dict__["name"] = RunName("hopper", "medium", "mingru", 2)  # cached_property: no config needed
    runs = [("hopper__medium", "mingru", "EPYC", 2400.0), ("hopper__medium", "mingru", "EPYC", 2600.0),
            ("walker2d__medium", "mingru", "EPYC", 3000.0), ("hopper__medium", "mingru", "Xeon", 1200.0),
            ("hopper__medium", "bc", "EPYC", 200.0), ("walker2d__medium", "mingru", "Xeon", 1000.0)]
    assert expected_seconds(job, runs, "EPYC") == (2500.0, "median of 2 finished mingru run(s), this task on this CPU")
    assert expected_seconds(job, runs[2:], "EPYC")[0] == 3000.0  # another task on this CPU
    assert expected_seconds(job, runs[3:], "EPYC")[0] == 1200.0  # this task on another CPU
    assert expected_seconds(job, runs[4:], "EPYC")[0] == 1000.0  # another task, another CPU
    others = [("hopper__medium", "transformer", "Xeon", 1500.0), ("hopper__medium", "transformer", "EPYC", 2800.0)]
    assert expected_seconds(job, runs[4:5] + others, "EPYC") == (  # no mingru run: another Decision model's
        2800.0, "median of 1 finished Decision-model run(s) of other agents, on this CPU")
    assert expected_seconds(job, runs[4:5] + others[:1], "EPYC")[0] == 1500.0
    assert expected_seconds(job, runs[4:5], "EPYC") is None  # only BC: not of its kind
    # what the estimate reads: each finished run's summary under the root (a damaged one is left out, said)
    from seqrl.grid import finished_runs
    for name in ("hopper__medium__mingru__0__1", "hopper__medium__mingru__1__2"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "done.json").write_text(json.dumps({"agent": "mingru", "wall_s": 1300.0,
                                                               "machine": {"cpu": "Intel Xeon"}}))
    (tmp_path / "hopper__medium__mingru__2__3").mkdir()
    (tmp_path / "hopper__medium__mingru__2__3" / "done.json").write_text("{damaged")
    assert sorted(finished_runs(tmp_path)) == [("hopper__medium", "mingru", "Intel Xeon", 1300.0)] * 2
    now = dt.datetime(2026, 12, 2, 8, 0)
    assert parse_until("+90", now) == dt.datetime(2026, 12, 2, 9, 30)
    assert parse_until("17:45", now) == dt.datetime(2026, 12, 2, 17, 45)
    assert parse_until("07:00", now) == dt.datetime(2026, 12, 3, 7, 0)  # past today: tomorrow
    with pytest.raises(SeqRLError, match="HH:MM or \\+MINUTES"):
        parse_until("soon", now)


def test_grid_jobs_carry_the_agent_label_of_their_extra_flags(tmp_path, capsys):
    from seqrl.grid import main as grid_main, make_jobs

    dt, bc = tiny_configs(tmp_path)
    ab = tmp_path / "ab.yaml"
    ab.write_text(f"base: {dt.name}\nema_decay: 0.99\n")  # an A/B arm over the same protocol
    jobs = make_jobs([dt, ab, bc], ["transformer", "mingru"], [0, 1], [])
    assert [j.prefix for j in jobs] == [f"hopper__medium__{a}__{s}__" for a in
                                        ("transformer", "mingru", "transformer+ema0.99", "mingru+ema0.99", "bc")
                                        for s in (0, 1)]
    assert jobs[-1].args == ["--config", str(bc.resolve()), "--seed", "1"]  # BC: no --backbone
    jobs = make_jobs([dt, dt], ["mingru"], [0], ["--decay-groups"])  # the same cell twice runs once
    assert [j.prefix for j in jobs] == ["hopper__medium__mingru+decay-groups__0__"]
    s4d_dt = ["--s4d.dt-min", "0.01", "--s4d.dt-max", "1.0"]  # an A/B arm as flags over the CPU protocol
    jobs = make_jobs([REPO / "configs/cpu/hopper-medium.yaml"], ["s4d"], [0], s4d_dt)
    assert [j.prefix for j in jobs] == ["hopper__medium__s4d+dt0.01-1+no-time__0__"]  # the CPU protocol is untimed
    jobs = make_jobs([REPO / "configs/cpu/hopper-medium.yaml"], ["mingru"], [0], ["--time-embedding"])  # as it was
    assert [j.prefix for j in jobs] == ["hopper__medium__mingru__0__"]
    assert grid_main(["--configs", str(bc), "--", "--backbone", "mingru"]) == 2
    assert "--agent bc does not use --backbone" in capsys.readouterr().err
    assert grid_main(["--configs", str(dt)]) == 2
    assert "say which backbones with --backbones" in capsys.readouterr().err
    assert grid_main(["--configs", str(REPO / "configs/cpu/hopper-medium.yaml"), "--backbones", "mingru", "--", *s4d_dt]) == 2
    assert "--backbone mingru does not use --s4d.dt-min, --s4d.dt-max (options of s4d)" in capsys.readouterr().err


def write_study(tmp_path: Path, text: str, name: str = "tiny_study") -> str:
    """A study file beside the tiny configs (its config paths are relative to it)."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return str(path)


def planned(study: str) -> list[str]:
    """The run prefixes of a study file, in order."""
    from seqrl.study import expand, load_study

    return [job.prefix for job, _ in expand(load_study(Path(study)))]


def test_study_file_expands_to_its_runs_in_its_order(tmp_path):
    """{dataset} over the datasets, a block's own seeds, flags in the labels; seed-major: every block for seed 0,
    then for seed 1; block-major: block after block; a run named twice runs once."""
    dt, _ = tiny_configs(tmp_path)
    replay = tmp_path / "tiny-medium-replay.yaml"
    replay.write_text(dt.read_text().replace("dataset: medium", "dataset: medium-replay"))
    (tmp_path / "tiny-medium.yaml").write_text(dt.read_text())
    text = """description: a tiny study
order: {order}
seeds: [0, 1]
datasets: [medium, medium-replay]
blocks:
  - configs: tiny-bc.yaml
    flags: --threads 1
  - configs: tiny-{{dataset}}.yaml
    backbones: [mingru]
    flags: [--ema-decay, "0.99"]
  - configs: [tiny.yaml, tiny-medium.yaml]
    backbones: [transformer]
    seeds: [1]
"""
    bc, m, r, t = ("hopper__medium__bc__{}__", "hopper__medium__mingru+ema0.99__{}__",
                   "hopper__medium-replay__mingru+ema0.99__{}__", "hopper__medium__transformer__{}__")
    seed_major = planned(write_study(tmp_path, text.format(order="seed-major")))
    assert seed_major == [x.format(s) for s in (0, 1) for x in (bc, m, r)] + [t.format(1)]
    block_major = planned(write_study(tmp_path, text.format(order="block-major")))
    assert block_major == [x.format(s) for x in (bc, m, r) for s in (0, 1)] + [t.format(1)]


@pytest.mark.parametrize("text, message", [
    ("seed: [0]\nblocks: [{configs: tiny.yaml}]", "unknown key 'seed' (did you mean 'seeds'?); the keys are: "),
    ("blocks: [{config: tiny.yaml}]", "block 1: unknown key 'config' (did you mean 'configs'?)"),
    ("blocks: [{configs: nope.yaml}]", "block 1: config nope.yaml: no such file"),
    ("order: seed-majr\nblocks: [{configs: tiny-bc.yaml}]", "order 'seed-majr' (did you mean 'seed-major'?)"),
    ("blocks: [{configs: 'tiny-{dataset}.yaml'}]", "names {dataset}; say datasets: [...]"),
    ("blocks: [{configs: tiny-bc.yaml, flags: --backbone mingru}]", "block 1: --agent bc does not use --backbone"),
    ("blocks: [{configs: tiny.yaml}]", "block 1: " ),
    ("seeds: [0, 0]\nblocks: [{configs: tiny-bc.yaml}]", "seeds must be distinct seeds"),
    ("blocks: [{configs: tiny.yaml, backbones: [mingru], evaluate: [{name: Best, targets: data-best}]}]",
     "evaluate name 'Best'"),
    ("blocks: [{configs: tiny.yaml, backbones: [mingru], evaluate: [{name: best, targets: high}]}]",
     "targets must be 'data-best', 'run' (the run's own, the default) or a list of returns"),
    ("blocks: oops", "blocks must be a list"),
    ("- just a list", "a study file is a mapping with blocks"),
    ("blocks: [{configs: tiny.yaml", "not valid YAML"),
])
def test_a_bad_study_file_is_one_clear_line(tmp_path, capsys, text, message):
    tiny_configs(tmp_path)
    assert study_main(["plan", write_study(tmp_path, text)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'tiny_study.yaml'}") and message in err and len(err.splitlines()) <= 2
    assert study_main(["collect", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: No such file or directory." in capsys.readouterr().err


def test_the_shipped_study_files_load_and_their_flags_parse():
    """Each studies/*.yaml is a valid study file whose blocks' flags the training program still takes (one run per
    block is resolved: the whole expansion takes seconds per study)."""
    from seqrl.grid import make_jobs
    from seqrl.study import load_study

    files = sorted((REPO / "studies").glob("*.yaml"))
    assert {f.stem for f in files} >= {"study6", "ab_time_embedding", "ab_fused", "ab_fused_data", "diag_val"}
    for f in files:
        study = load_study(f)
        assert study.description, f
        for block in study.blocks:
            jobs = make_jobs([block.configs[0]], list(block.backbones or []) or None, [block.seeds[0]], list(block.flags))
            assert jobs, f


def test_study_run_skips_finished_runs_resumes_unfinished_ones_and_collects(data_root, tmp_path, capsys):
    """A tiny study, run for real: its runs and its block's evaluation; run again: finished runs skipped, one made
    unfinished resumed, nothing evaluated twice; collect: the results file gives the tables the run directories
    give; runs found by their configs, a run directory that the study does not name left out."""
    tiny_configs(tmp_path)
    study = write_study(tmp_path, """description: a tiny study
seeds: [0]
blocks:
  - configs: tiny-bc.yaml
  - configs: tiny.yaml
    backbones: [mingru]
    flags: --rollout window recurrent
    evaluate: [{name: data_best, targets: data-best}]
""")
    root = tmp_path / "runs"
    run = ["run", study, "--runs-root", str(root), "--jobs", "2"]
    assert study_main(run) == 0
    out = capsys.readouterr().out
    assert out.count("[grid] start ") == 2 and "[study] evaluate hopper__medium__mingru__0__" in out
    assert "Then: python -m seqrl.study collect" in out
    mingru = next(root.glob("hopper__medium__mingru__0__*"))
    best = json.loads((mingru / "done.json").read_text())["data"]["return_max"]
    evaluation = json.loads((mingru / "data_best_eval.json").read_text())["results"]
    assert [(r["target"], r["rollout"]) for r in evaluation] == [(round(best, 1), "window"), (round(best, 1), "recurrent")]
    (mingru / "done.json").unlink()  # as if killed after its last checkpoint
    assert study_main(run) == 0
    out = capsys.readouterr().out
    assert "[grid] skip hopper__medium__bc__0__" in out and f"[grid] resume {mingru.name}" in out
    assert (mingru / "done.json").is_file() and "[study] evaluate" not in out
    assert study_main(run) == 0
    assert capsys.readouterr().out.count("[grid] skip ") == 2
    stray = root / "hopper__medium__minlstm__0__1"  # another agent's run under the same root (minlstm reads mingru's options)
    stray.mkdir()
    for name in ("config.yaml", "evals.jsonl", "done.json"):
        (stray / name).write_text((mingru / name).read_text().replace("backbone: mingru", "backbone: minlstm"))
    mingru.rename(root / "hopper__medium__mingru__0")  # found by its config, whatever its folder's name
    results = tmp_path / "tiny_study.jsonl.gz"
    assert study_main(["collect", study, "--runs-root", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"[study] 2 of 2 runs -> {results}" in out and "not in the study (left out): hopper__medium__minlstm__0__1" in out
    stray.rename(tmp_path / "gru")
    for source, name in ((root, "dirs"), (results, "file")):
        assert results_main([str(source), "--finished", "--no-plots", "--out", str(tmp_path / name)]) == 0
    for table in ("results.md", "results.csv"):
        assert (tmp_path / "dirs" / table).read_bytes() == (tmp_path / "file" / table).read_bytes()
    assert results_main([str(results), "--paired", "data_best", "--no-plots", "--out", str(tmp_path / "file")]) == 0
    capsys.readouterr()
    assert study_main(["plan", study, "--runs-root", str(root)]) == 0
    assert "2 runs under" in capsys.readouterr().out
    before = results.read_bytes()  # collected from a root without the runs: the file's records are kept as they were
    assert study_main(["collect", study, "--runs-root", str(tmp_path / "empty")]) == 0
    assert "2 of them kept from the file as it was" in capsys.readouterr().out and results.read_bytes() == before
    assert study_main(["collect", study, "--runs-root", str(tmp_path / "empty"), "--out", str(tmp_path / "new.jsonl.gz")]) == 2
    assert "no finished run of" in capsys.readouterr().err
    assert study_main(["collect", study, "--runs-root", str(root), "--out", str(tmp_path / "x.json")]) == 2
    assert "a results file's name ends in .jsonl.gz" in capsys.readouterr().err
    run_dir = root / "hopper__medium__mingru__0"
    run_dir = run_dir.rename(root / "hopper__medium__mingru__0__1")
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    (run_dir / "config.yaml").write_text(yaml.safe_dump({**config, "eval_episodes": 100000}))  # a long evaluation
    for old in ("data_best_eval.json", "data_best_eval.log"):
        (run_dir / old).unlink()
    proc = subprocess.Popen([sys.executable, "-m", "seqrl.study", *run], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    log = run_dir / "data_best_eval.log"  # written by the new evaluation only
    wait_for(lambda: log.is_file() and "episodes per target" in log.read_text(), proc, "the study's evaluation")
    proc.send_signal(signal.SIGTERM)
    status, line = ended(proc)
    assert status == 143 and line == (f"[study] stopped by SIGTERM during the evaluations: 1 stopped unwritten "
                                      f"({run_dir.name} data_best), the finished ones kept. Run the same command "
                                      "again for the rest.")
    assert not list(run_dir.glob("data_best_eval.json*")) and "stopped by SIGTERM during the evaluation" in log.read_text()


def test_an_evaluation_takes_the_runs_own_targets_by_default_and_passes_its_flags(tmp_path):
    from seqrl.study import Evaluation, _evaluation, evaluation_command

    ev = _evaluation("study", {"name": "cand5", "flags": "--candidates 5"})
    assert ev == Evaluation("cand5", (), ("--candidates", "5"))
    cmd = evaluation_command(tmp_path, {"eval_episodes": 10, "rollout": ["window"]}, None, ev)  # type: ignore[arg-type]
    assert "--targets" not in cmd and cmd[cmd.index("--candidates") + 1] == "5"
    assert cmd[-2:] == ["--json", str(tmp_path / "cand5_eval.json.tmp")]
    best = _evaluation("study", {"name": "high", "targets": [3600, 5000]})
    cmd = evaluation_command(tmp_path, {"eval_episodes": 10, "rollout": ["window"]}, None, best)  # type: ignore[arg-type]
    assert cmd[cmd.index("--targets") + 1:cmd.index("--targets") + 3] == ["3600.0", "5000.0"]


def test_study_threads_default_to_the_cores_this_process_may_use_and_follow_threads(data_root, tmp_path, capsys):
    """Each run's torch threads: the cores of the grid's affinity mask (taskset, a cgroup, Slurm) shared by --jobs,
    not the machine's count; --threads N sets them; a bad --threads is refused before any run."""
    tiny_configs(tmp_path)
    study = write_study(tmp_path, "seeds: [0]\nblocks: [{configs: tiny-bc.yaml}]\n")
    cmd = [sys.executable, "-m", "seqrl.study", "run", study, "--jobs", "1"]
    one_core = subprocess.run([*cmd, "--runs-root", str(tmp_path / "pinned")], cwd=REPO, capture_output=True,
                              text=True, env=os.environ.copy(), timeout=600,
                              preexec_fn=lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}))
    assert one_core.returncode == 0, one_core.stdout + one_core.stderr
    assert "1 thread(s) each (1 cores shared; a run whose config sets threads: its own)" in one_core.stdout
    run = next((tmp_path / "pinned").glob("hopper__medium__bc__0__*"))
    assert json.loads((run / "done.json").read_text())["machine"]["threads"] == 1
    assert study_main(["run", study, "--jobs", "1", "--threads", "1", "--runs-root", str(tmp_path / "asked")]) == 0
    assert "1 thread(s) each (--threads; a run whose config sets threads: its own)" in capsys.readouterr().out
    run = next((tmp_path / "asked").glob("hopper__medium__bc__0__*"))
    assert json.loads((run / "done.json").read_text())["machine"]["threads"] == 1
    assert study_main(["run", study, "--threads", "0", "--runs-root", str(tmp_path / "bad")]) == 2
    assert "error: --threads 0: give 1 or more." in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_only_runs_and_plans_the_runs_whose_names_match(data_root, tmp_path, capsys):
    """--only trains just the runs it names (the rest left for a later command, which --only does not change);
    a pattern matching none of the study's runs is refused before any run, saying what the names look like."""
    tiny_configs(tmp_path)
    study = write_study(tmp_path, "seeds: [0, 1]\nblocks: [{configs: tiny-bc.yaml}]\n")
    root = tmp_path / "runs"
    assert study_main(["run", study, "--runs-root", str(root), "--only", "*__1__"]) == 0
    assert "(--only *__1__)" in capsys.readouterr().out
    assert [p.name.rsplit("__", 1)[0] for p in root.glob("hopper__*")] == ["hopper__medium__bc__1"]
    assert study_main(["plan", study, "--runs-root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "to run    hopper__medium__bc__0__*" in out and "finished  hopper__medium__bc__1__*" in out
    assert study_main(["collect", study, "--runs-root", str(root)]) == 0
    capsys.readouterr()
    assert study_main(["plan", study, "--runs-root", str(tmp_path / "elsewhere"), "--only", "*__0__"]) == 0
    out = capsys.readouterr().out  # the recorded seed-1 run is left out by --only, not named by no job
    assert "1 runs under" in out and "0 recorded" in out and "named by no job" not in out
    assert study_main(["run", study, "--runs-root", str(root), "--only", "bc*"]) == 2
    err = capsys.readouterr().err
    assert "error: --only 'bc*' matches none of" in err and "look like hopper__medium__bc__0__, hopper__medium__bc__1__" in err
    assert len(list(root.glob("hopper__*"))) == 1


TINY_VALUE = {"env": "hopper", "dataset": "medium", "steps": 4, "eval_every": 4, "eval_episodes": 1, "batch_size": 8,
              "warmup_steps": 2, "device": "cpu"}
TINY_VDT = {**TINY_VALUE, "agent": "vdt", "model": {"context_len": 5, "width": 16, "n_layers": 1},
            "value": {"critic": {"hidden": [16]}}}


def iql_then_vdt(tmp_path: Path, vdt_flags: str = "") -> str:
    """A study of a tiny IQL run, then a tiny value-guided minGRU (with ``vdt_flags``), seed 0, and its configs."""
    (tmp_path / "iql.yaml").write_text(yaml.safe_dump({**TINY_VALUE, "agent": "iql",
                                                       "iql": {"hidden": [16], "critic": {"hidden": [16]}}}))
    (tmp_path / "vdt.yaml").write_text(yaml.safe_dump(TINY_VDT))
    flags = f"\n    flags: {vdt_flags}" if vdt_flags else ""
    return write_study(tmp_path, f"""seeds: [0]
blocks:
  - configs: iql.yaml
  - configs: vdt.yaml
    backbones: [mingru]{flags}
""")


def test_a_study_block_takes_the_critics_of_an_earlier_blocks_iql_runs_and_waits_for_them(data_root, tmp_path, capsys):
    """--critic-from {runs_root}: each value-guided run reads the IQL run of its dataset and seed under the study's
    runs root; with two jobs it would start beside that run, so the grid holds it until the IQL run has ended."""
    study = iql_then_vdt(tmp_path, "--critic-from {runs_root}")
    root = tmp_path / "runs"
    assert study_main(["run", study, "--runs-root", str(root), "--jobs", "2", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "[grid] hopper__medium__mingru+value-q+fixed-critic__0__* waits for hopper__medium__iql__0__* (it reads their runs)" in out
    vdt = next(root.glob("hopper__medium__mingru+value-q+fixed-critic__0__*"))
    assert yaml.safe_load((vdt / "config.yaml").read_text())["critic_from"] == str(root.resolve())
    assert "held fixed" in (vdt / "train.log").read_text() and (vdt / "done.json").is_file()


def test_a_run_whose_iql_run_failed_or_did_not_start_is_not_started(data_root, tmp_path, capsys):
    """A value-guided run that reads an IQL run of the grid (--critic-from {runs_root}) is held back, not started to
    fail, when that run failed (or --until left it for later); the grid says which and why."""
    study = iql_then_vdt(tmp_path, "--critic-from {runs_root}")
    (tmp_path / "iql.yaml").write_text(yaml.safe_dump({**TINY_VALUE, "agent": "iql", "eval_env": "NoSuchEnv-v0",
                                                       "iql": {"hidden": [16], "critic": {"hidden": [16]}}}))
    root = tmp_path / "runs"
    assert study_main(["run", study, "--runs-root", str(root), "--threads", "1"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and ("not started: hopper__medium__mingru+value-q+fixed-critic__0__* reads "
                                "hopper__medium__iql__0__* (failed); a later run of the grid starts it after them") in out
    assert not list(root.glob("hopper__medium__mingru*"))


def test_a_study_resumes_from_its_results_file_on_a_machine_without_its_runs(data_root, tmp_path, capsys):
    """A sitting's machine is gone with its run directories; the committed results file is not: its runs are not
    trained again, and collect keeps them. A run whose config has changed since is superseded: trained again, its
    old record kept until the new run replaces it. A recorded IQL run whose critic a run to train reads is trained
    again (its weights are needed)."""
    study = iql_then_vdt(tmp_path)
    first, results = tmp_path / "machine1", tmp_path / "tiny_study.jsonl.gz"
    assert study_main(["run", study, "--runs-root", str(first), "--threads", "1"]) == 0
    assert study_main(["collect", study, "--runs-root", str(first)]) == 0
    capsys.readouterr()
    recorded = results.read_bytes()
    second = tmp_path / "machine2"  # a new machine: the results file, no run directory
    assert study_main(["plan", study, "--runs-root", str(second)]) == 0
    assert "2 runs under" in (out := capsys.readouterr().out) and "0 finished, 2 recorded, 0 started, 0 to run" in out
    assert study_main(["run", study, "--runs-root", str(second), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "2 of them recorded in" in out and "[study] nothing to train" in out and not second.exists()
    assert study_main(["collect", study, "--runs-root", str(second)]) == 0
    assert results.read_bytes() == recorded and "2 of them kept from the file as it was" in capsys.readouterr().out

    changed = {**TINY_VDT, "steps": 6, "eval_every": 6}  # the recipe changed
    (tmp_path / "vdt.yaml").write_text(yaml.safe_dump(changed))
    assert study_main(["plan", study, "--runs-root", str(second)]) == 0
    out = capsys.readouterr().out
    assert "1 recorded, 0 started, 1 to run" in out and "superseded in" in out and "hopper__medium__mingru+value-q__0__" in out
    assert study_main(["collect", study, "--runs-root", str(second)]) == 0  # not rerun yet: nothing dropped
    assert "kept, though superseded" in capsys.readouterr().out and results.read_bytes() == recorded
    assert study_main(["run", study, "--runs-root", str(second), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "1 of them recorded in" in out and "superseded (their config is not the study's now): trained again" in out
    assert out.count("[grid] start ") == 1 and not list(second.glob("hopper__medium__iql__*"))
    assert study_main(["collect", study, "--runs-root", str(second)]) == 0
    assert "superseded" not in capsys.readouterr().out
    from seqrl.resultsfile import read_results_file

    steps = {r["agent"]: r["config"]["steps"] for r in read_results_file(results)[1]}
    assert steps == {"iql": 4, "mingru+value-q": 6}

    study = iql_then_vdt(tmp_path, "--critic-from {runs_root}")
    (tmp_path / "vdt.yaml").write_text(yaml.safe_dump(changed))
    third = tmp_path / "machine3"  # the fixed-critic run is not recorded, and reads the recorded IQL run's critic
    assert study_main(["run", study, "--runs-root", str(third), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "[grid] start hopper__medium__iql__0__" in out and "recorded in" not in out
    assert (next(third.glob("hopper__medium__mingru+value-q+fixed-critic__0__*")) / "done.json").is_file()
    assert study_main(["plan", study, "--runs-root", str(third)]) == 0
    assert "but named by no job of the study now (kept by collect): hopper__medium__mingru+value-q__0__" in capsys.readouterr().out
    assert study_main(["collect", study, "--runs-root", str(third)]) == 0  # the relabelled block's old run: kept
    out = capsys.readouterr().out
    assert "[study] 2 of 2 runs and 1 no job names now ->" in out
    assert "kept, though no job of the study names them now" in out and "hopper__medium__mingru+value-q__0__" in out
    assert sorted(r["agent"] for r in read_results_file(results)[1]) == ["iql", "mingru+value-q", "mingru+value-q+fixed-critic"]
