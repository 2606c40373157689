"""The study workflow: a grid of runs (skipping finished ones) and the results tables and plots."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers import REPO

from seqrl.results import main as results_main


def fake_run(root, backbone, seed, scores_by_step, gate="default", extra=None, target=3600.0, rollout="window",
             episodes=None, data=None, done=None):
    """A run directory as train_offline.py writes it: config.yaml, evals.jsonl, and done.json if ``data``
    (the data's mean normalized score) is given, with ``done``'s fields. ``episodes``: extra fields of every result
    (length, fell...)."""
    d = root / f"hopper__medium__{backbone}__{seed}__{seed}"
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump({"env": "hopper", "dataset": "medium", "backbone": backbone,
                                                   "seed": seed, "gate": gate, **(extra or {})}))
    with open(d / "evals.jsonl", "w") as f:
        for step, score in scores_by_step.items():
            f.write(json.dumps({"step": step, "results": [
                {"target": target, "rollout": rollout, "normalized_mean": score, "normalized_std": 1.0, **(episodes or {})},
            ]}) + "\n")
    if data is not None:
        (d / "done.json").write_text(json.dumps({"data": {"normalized_mean": data}, **(done or {})}))
    return d


def test_results_tables_and_plots_by_hand(tmp_path, capsys):
    runs = tmp_path / "runs"
    fake_run(runs, "mingru", 0, {1000: 40.0, 2000: 60.0})
    fake_run(runs, "mingru", 1, {1000: 50.0, 2000: 40.0})
    fake_run(runs, "transformer", 0, {1000: 30.0, 2000: 70.0})
    fake_run(runs, "mingru", 2, {1000: 90.0})  # still training: must not mix into the "last" of finished runs
    out = tmp_path / "out"
    assert results_main([str(runs), "--out", str(out)]) == 0
    assert "mingru__2__2 left out of mingru R=3600 window: its last evaluation is at update 1000" in capsys.readouterr().err
    rows = {r["agent"]: r for r in csv.DictReader(open(out / "results.csv"))}
    m = rows["mingru"]
    assert m["seeds"] == "2" and m["updates"] == "2000" and m["left_out"] == "1"
    assert float(m["last_mean"]) == pytest.approx(50.0) and float(m["last_std"]) == pytest.approx(10.0)  # 60, 40
    assert float(m["best_mean"]) == pytest.approx(55.0) and float(m["best_std"]) == pytest.approx(5.0)  # 60, 50
    assert float(rows["transformer"]["last_mean"]) == 70.0 and rows["transformer"]["seeds"] == "1"
    assert ("| hopper | medium | - | mingru | - | - | 3600 | window | 2 | 2000 | 50.0 ± 10.0 | 1.0 | 55.0 ± 5.0 | 5.0 "
            "| - | - | - | - |") in (out / "results.md").read_text()
    assert results_main([str(runs), "--out", str(out), "--no-plots", "--wide"]) == 0
    wide = (out / "results_wide.md").read_text()
    assert "| hopper | medium | - | mingru | - | - | 2 | 50.0 ± 10.0 |" in wide  # 2 seeds: std over seeds
    assert "| hopper | medium | - | transformer | - | - | 1 | 70.0 ± 1.0 |" in wide  # 1 seed: std over episodes
    for png in ("curves.png", "bars.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_results_bc_row_data_score_recipe_arms_and_episode_columns(tmp_path):
    """The table the issue asks for: BC's row (no target, rollout state), the data's own score beside every
    row of its dataset, A/B arms apart (the recipe options label the agent), and the last evaluation's
    episodes (length, shares fallen and upside down, x displacement) averaged over seeds."""
    runs = tmp_path / "runs"
    bc_eps = {"length_mean": 1000.0, "fell_fraction": 0.0, "upside_down_fraction": 0.0, "x_displacement_mean": 30.0}
    fake_run(runs, "transformer", 0, {2000: 60.0, 4000: 62.0}, extra={"agent": "bc"}, target=None, rollout="state",
             episodes=bc_eps, data=56.1)
    fake_run(runs, "mingru", 0, {1000: 80.0, 2000: 40.0}, episodes={"length_mean": 300.0, "fell_fraction": 1.0,
                                                                       "upside_down_fraction": 0.2,
                                                                       "x_displacement_mean": 5.0}, data=56.1)
    fake_run(runs, "mingru", 1, {1000: 70.0, 2000: 50.0}, episodes={"length_mean": 500.0, "fell_fraction": 0.5,
                                                                       "upside_down_fraction": 0.4,
                                                                       "x_displacement_mean": 7.0})
    fake_run(runs, "mingru", 2, {1000: 60.0, 2000: 75.0}, extra={"ema_decay": 0.999})  # the other arm
    out = tmp_path / "out"
    assert results_main([str(runs), "--out", str(out)]) == 0
    rows = {r["agent"]: r for r in csv.DictReader(open(out / "results.csv"))}
    assert set(rows) == {"bc", "mingru", "mingru+ema0.999"}
    assert rows["bc"]["target"] == "" and rows["bc"]["rollout"] == "state" and rows["bc"]["seeds"] == "1"
    m = rows["mingru"]
    assert m["seeds"] == "2" and float(m["last_mean"]) == 45.0 and float(m["best_mean"]) == 75.0
    assert float(m["best_minus_last"]) == 30.0
    assert float(m["length_mean"]) == 400.0 and float(m["fell_fraction"]) == 0.75 and float(m["x_displacement_mean"]) == 6.0
    assert float(m["upside_down_fraction"]) == pytest.approx(0.3)
    assert all(float(r["data"]) == pytest.approx(56.1) for r in rows.values())  # one done.json serves the dataset
    assert rows["mingru+ema0.999"]["last_mean"] == "75.0" and rows["mingru+ema0.999"]["length_mean"] == ""
    md = (out / "results.md").read_text()
    assert "| hopper | medium | 56.1 | bc | - | - | - | state | 1 | 4000 | 62.0 | 1.0 | 62.0 | 0.0 | 1000 | 0% | 0% | 30.0 |" in md
    assert "| hopper | medium | 56.1 | mingru | - | - | 3600 | window | 2 | 2000 | 45.0 ± 5.0 | 1.0 | 75.0 ± 5.0 | 30.0 | 400 | 75% | 30% | 6.0 |" in md
    # the headline: one row per dataset, each seed's last value in brackets (seed order), one seed: ± over episodes
    assert "| env | dataset | data | R | bc | mingru window | mingru+ema0.999 window |" in md
    assert ("| hopper | medium | 56.1 | 3600 | 62.0 ± 1.0 (1 seed); best 62.0 | 45.0 ± 5.0 (40.0, 50.0); best 75.0 | "
            "75.0 ± 1.0 (1 seed); best 75.0 |") in md
    assert rows["mingru"]["last_by_seed"] == "0:40.0 1:50.0"
    assert results_main([str(runs), "--out", str(out), "--no-plots", "--wide"]) == 0
    wide = (out / "results_wide.md").read_text()
    assert "| env | dataset | data | agent | params | updates/s | seeds | state | window R=3600 |" in wide
    assert "| hopper | medium | 56.1 | bc | - | - | 1 | 62.0 ± 1.0 | - |" in wide


def test_results_headline_takes_each_datasets_highest_target(tmp_path):
    runs = tmp_path / "runs"
    fake_run(runs, "mingru", 0, {1000: 30.0}, target=1800.0)
    fake_run(runs, "mingru", 1, {1000: 80.0}, target=3600.0)
    out = tmp_path / "out"
    assert results_main([str(runs), "--out", str(out), "--no-plots"]) == 0
    md = (out / "results.md").read_text()
    assert "| hopper | medium | - | 3600 | 80.0 ± 1.0 (1 seed); best 80.0 |" in md and "30.0 ± 1.0 (1 seed)" not in md


def test_results_headline_shows_an_agent_without_the_datasets_target_at_its_own(tmp_path):
    """An A/B arm evaluated at the data's best return (2951.3) sits beside one at DT's 3600: its cell is its own
    highest target, marked, not '-'."""
    runs = tmp_path / "runs"
    fake_run(runs, "mingru", 0, {1000: 80.0}, target=3600.0)
    fake_run(runs, "mingru", 1, {1000: 20.0}, target=1800.0)
    fake_run(runs, "transformer", 0, {1000: 70.0}, target=2951.3, extra={"targets_from_data": True})
    out = tmp_path / "out"
    assert results_main([str(runs), "--out", str(out), "--no-plots"]) == 0
    md = (out / "results.md").read_text()
    header = "| env | dataset | data | R | mingru window | transformer+data-targets window |"
    row = "| hopper | medium | - | 3600 | 80.0 ± 1.0 (1 seed); best 80.0 | 70.0 ± 1.0 (1 seed) at R=2951.3; best 70.0 |"
    assert header in md and row in md


def test_results_finished_leaves_out_runs_still_training(tmp_path):
    runs = tmp_path / "runs"
    fake_run(runs, "mingru", 0, {1000: 40.0, 2000: 60.0}, data=56.1)  # done.json: finished
    fake_run(runs, "transformer", 0, {1000: 30.0})  # no done.json: still training
    out = tmp_path / "out"
    assert results_main([str(runs), "--out", str(out), "--no-plots"]) == 0
    assert {r["agent"] for r in csv.DictReader(open(out / "results.csv"))} == {"mingru", "transformer"}
    assert results_main([str(runs), "--out", str(out), "--no-plots", "--finished"]) == 0
    assert {r["agent"] for r in csv.DictReader(open(out / "results.csv"))} == {"mingru"}


def test_results_with_no_runs_is_a_clear_error(tmp_path, capsys):
    assert results_main([str(tmp_path)]) == 2
    assert "no evaluated runs" in capsys.readouterr().err


def test_results_readme_block_is_replaced_and_bad_markers_fail_before_work(tmp_path, capsys):
    runs = tmp_path / "runs"
    fake_run(runs, "mingru", 0, {1000: 40.0, 2000: 60.0})
    readme = tmp_path / "README.md"
    readme.write_text("# T\nintro\n<!-- study:start -->\nold table\n<!-- study:end -->\nafter\n")
    args = [str(runs), "--out", str(tmp_path / "out"), "--no-plots", "--readme", str(readme), "--block", "study"]
    assert results_main(args) == 0
    text = readme.read_text()
    assert "old table" not in text and text.startswith("# T\nintro\n<!-- study:start -->\nHeadline:")
    assert "| hopper | medium | - | mingru | - | - | 3600 | window | 1 | 2000 | 60.0 | 1.0 |" in text
    assert text.endswith("|\n<!-- study:end -->\nafter\n")
    assert results_main(args) == 0 and readme.read_text() == text  # refreshing again changes nothing
    for bad in ("no markers\n", "<!-- study:end -->\n<!-- study:start -->\n",
                "<!-- study:start -->\n<!-- study:start -->\n<!-- study:end -->\n"):
        readme.write_text(bad)
        assert results_main([args[0], "--out", str(tmp_path / "out2"), *args[3:]]) == 2
        assert "expected one line '<!-- study:start -->' followed by one line '<!-- study:end -->'" in capsys.readouterr().err
        assert readme.read_text() == bad and not (tmp_path / "out2").exists()  # nothing written, nothing lost
    assert results_main([*args[:5], str(tmp_path / "nope.md")]) == 2
    assert "nope.md: No such file" in capsys.readouterr().err


def tiny_configs(tmp_path):
    common = {"env": "hopper", "dataset": "medium", "steps": 4, "eval_every": 4, "eval_episodes": 1, "batch_size": 8,
              "warmup_steps": 2, "log_every": 2, "device": "cpu"}
    dt, bc = tmp_path / "tiny.yaml", tmp_path / "tiny-bc.yaml"
    dt.write_text(yaml.safe_dump({**common, "context_len": 5, "width": 16, "n_layers": 1}))
    bc.write_text(yaml.safe_dump({**common, "agent": "bc", "bc_hidden": [16]}))
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

    from seqrl.grid import Job, expected_seconds, parse_until
    from seqrl.core.errors import SeqRLError

    job = Job(Path("c.yaml"), "mingru", 2, [])
    job.__dict__["prefix"] = "hopper__medium__mingru__2__"  # cached_property: no config needed
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
    # a record from before done.json kept the vector extensions apart names the same CPU with them in brackets
    from seqrl.grid import finished_runs
    for name, cpu in (("hopper__medium__mingru__0__1", "Intel Xeon (AVX-512, AVX512-BF16, no AMX)"),
                      ("hopper__medium__mingru__1__2", "Intel Xeon")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "done.json").write_text(json.dumps({"agent": "mingru", "wall_s": 1300.0,
                                                               "machine": {"cpu": cpu}}))
    assert sorted(finished_runs(tmp_path)) == [("hopper__medium", "mingru", "Intel Xeon", 1300.0)] * 2
    (tmp_path / "hopper__medium__mingru__2__3").mkdir()  # resumed from a checkpoint without its time: too short
    (tmp_path / "hopper__medium__mingru__2__3" / "done.json").write_text(json.dumps(
        {"agent": "mingru", "wall_s": 300.0, "wall_s_complete": False, "machine": {"cpu": "Intel Xeon"}}))
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
    jobs = make_jobs([REPO / "configs/ab/hopper-medium-s4d-dt.yaml"], ["s4d"], [0], [])  # the shipped S4D arm
    assert [j.prefix for j in jobs] == ["hopper__medium__s4d+dt0.01-1+no-time__0__"]  # the CPU protocol is untimed
    jobs = make_jobs([REPO / "configs/ab/hopper-medium-time-embedding.yaml"], ["mingru"], [0], [])  # as it was
    assert [j.prefix for j in jobs] == ["hopper__medium__mingru__0__"]
    assert grid_main(["--configs", str(bc), "--", "--backbone", "mingru"]) == 2
    assert "--agent bc does not use --backbone" in capsys.readouterr().err
    assert grid_main(["--configs", str(dt)]) == 2
    assert "say which backbones with --backbones" in capsys.readouterr().err
    assert grid_main(["--configs", str(REPO / "configs/ab/hopper-medium-s4d-dt.yaml"), "--backbones", "mingru"]) == 2
    assert "--backbone mingru does not use --s4d.dt-min, --s4d.dt-max (options of s4d)" in capsys.readouterr().err


def test_results_take_size_and_speed_from_done_json(tmp_path):
    """A committed record keeps no checkpoint and no TensorBoard events: params and updates/s come from done.json
    (and a run without them shows '-')."""
    runs = tmp_path / "runs"
    fake_run(runs, "mingru", 0, {1000: 40.0}, data=56.1, done={"params": 548483, "updates_per_s": 3.5})
    fake_run(runs, "mingru", 1, {1000: 60.0}, data=56.1, done={"params": 548483, "updates_per_s": 4.5})
    fake_run(runs, "transformer", 0, {1000: 30.0}, data=56.1)
    out = tmp_path / "out"
    assert results_main([str(runs), "--out", str(out), "--no-plots"]) == 0
    rows = {r["agent"]: r for r in csv.DictReader(open(out / "results.csv"))}
    assert rows["mingru"]["params"] == "548483" and float(rows["mingru"]["updates_per_s"]) == pytest.approx(4.0)
    assert rows["transformer"]["params"] == "" and rows["transformer"]["updates_per_s"] == ""
    table = (out / "results.md").read_text()
    assert "| hopper | medium | 56.1 | mingru | 548,483 | 4.0 | 3600 | window | 2 |" in table
    assert "| hopper | medium | 56.1 | transformer | - | - | 3600 | window | 1 |" in table


def test_data_target_ab_pairs_each_run_with_its_evaluation_at_the_data_best(data_root, tmp_path, capsys):
    """scripts/data_target_ab.py: a tiny run evaluated at its data's best return by --evaluate; then the paired
    table by hand (arm A: the last evaluation at the highest target; arm B: data_best_eval.json)."""
    from helpers import load_module

    ab = load_module(REPO / "scripts" / "data_target_ab.py", "data_target_ab")
    runs = tmp_path / "runs"
    p = subprocess.run([sys.executable, "train_offline.py", "--config", str(tiny_configs(tmp_path)[0]), "--backbone",
                        "mingru", "--rollout", "window", "recurrent", "--keep-checkpoints",
                        "--run-dir", str(runs / "hopper__medium__mingru__0__1")],
                       cwd=REPO, capture_output=True, text=True, env=os.environ.copy(), timeout=600)
    assert p.returncode == 0, p.stderr
    assert ab.main([str(runs), "--evaluate"]) == 0
    run = runs / "hopper__medium__mingru__0__1"
    best = json.loads((run / "done.json").read_text())["data"]["return_max"]
    b = json.loads((run / "data_best_eval.json").read_text())["results"]
    assert [(r["target"], r["rollout"]) for r in b] == [(round(best, 1), "window"), (round(best, 1), "recurrent")]
    assert "evaluating at the data's best return" in capsys.readouterr().out
    probe = load_module(REPO / "scripts" / "first_action_probe.py", "first_action_probe")  # the same kept run
    assert probe.main([str(run), "--targets", "0", "3600"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("first action at reset seed 0, R = 0, 3600") and len(lines) == 2  # one checkpoint: 4
    assert lines[1].strip().startswith("4 updates: mean |a| ") and "; spread over R " in lines[1]
    assert probe.main([str(runs)]) == 2  # not a run with checkpoints: a clear error

    by_hand = tmp_path / "by_hand"
    for seed, (a, bb) in enumerate([(20.0, 30.0), (40.0, 35.0)]):
        d = by_hand / f"hopper__medium-replay__transformer__{seed}__1"
        d.mkdir(parents=True)
        (d / "config.yaml").write_text(yaml.safe_dump({"env": "hopper", "dataset": "medium-replay", "seed": seed}))
        (d / "done.json").write_text(json.dumps({"agent": "transformer", "targets": [3600.0, 1800.0], "last": {"results": [
            {"target": 3600.0, "rollout": "window", "normalized_mean": a},
            {"target": 1800.0, "rollout": "window", "normalized_mean": 99.0}]}}))
        (d / "data_best_eval.json").write_text(json.dumps({"results": [
            {"target": 2108.0, "rollout": "window", "normalized_mean": bb}]}))
    (by_hand / "bc_run").mkdir()
    (by_hand / "bc_run" / "done.json").write_text(json.dumps({"agent": "bc", "targets": []}))  # no target: no pair
    assert ab.main([str(by_hand)]) == 0
    out = capsys.readouterr().out
    assert "| hopper-medium-replay | transformer | window | 2 | 30.0 | 32.5 | +2.5 | 0: 20.0 → 30.0, 1: 40.0 → 35.0 |" in out
    assert len(out.splitlines()) == 3  # header, separator, one row: the BC run makes none
    assert ab.main([str(tmp_path / "nowhere")]) == 2


def test_done_when_checks_each_headline_cell_against_bc_the_data_and_hopper_bars(tmp_path, capsys):
    """scripts/done_when.py on a hand-made results table: the highest target per agent, BC and data bars, and on
    hopper-medium the 73 and best - last <= 8 bars for the named backbones, BC only for the others."""
    from helpers import load_module

    dw = load_module(REPO / "scripts" / "done_when.py", "done_when")
    fields = ["env", "dataset", "data", "agent", "target", "rollout", "seeds", "last_mean", "best_minus_last"]
    rows = [("hopper", "medium", 56.1, "bc", "", "state", 3, 58.8, 12.6),
            ("hopper", "medium", 56.1, "mingru+no-time", 3600, "window", 3, 93.8, 0.2),
            ("hopper", "medium", 56.1, "mingru+no-time", 1800, "window", 3, 57.0, 6.0),  # not the highest: skipped
            ("hopper", "medium", 56.1, "transformer+no-time", 3600, "window", 3, 80.0, 9.0),  # gap > 8
            ("hopper", "medium", 56.1, "s4d+no-time", 3600, "window", 1, 50.0, 1.0),  # below BC, 1 seed
            ("hopper", "medium", 56.1, "transformer+rope+no-time", 3600, "window", 3, 10.0, 0.0),  # not the protocol
            ("walker2d", "medium-replay", 6.8, "bc", "", "state", 3, 14.5, 6.8),
            ("walker2d", "medium-replay", 6.8, "transformer+no-time", 5000, "window", 3, 10.5, 7.1),
            ("walker2d", "medium-replay", 6.8, "s4d+no-time", 5000, "window", 3, 1.0, 0.0)]  # not named: skipped
    path = tmp_path / "results.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(fields)
        w.writerows(rows)
    protocol = tmp_path / "protocol"  # the task configs whose agents get verdicts: no timestep embedding, no positions
    protocol.mkdir()
    for task in ("hopper-medium", "walker2d-medium-replay"):
        (protocol / f"{task}.yaml").write_text(f"env: {task.split('-')[0]}\ntime_embedding: false\n")
    assert dw.main([str(path), "--configs", str(protocol)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 5
    assert "mingru+no-time window" in out[0] and ": ok" in out[0] and ">= 73, best - last 0.2 <= 8" in out[0]
    assert "s4d+no-time window" in out[1] and "SHORT not >= BC 58.8 (seeds 1/3: not decided)" in out[1]
    assert "transformer+no-time window" in out[2] and "SHORT >= BC 58.8, >= 73, not best - last 9.0 <= 8" in out[2]
    assert "transformer+rope+no-time window" in out[3] and "not the protocol (transformer+no-time): no verdict" in out[3]
    assert out[4].startswith("walker2d-medium-replay") and "SHORT not >= BC 14.5, >= data 6.8" in out[4]
    (protocol / "hopper-medium.yaml").write_text("env: hopper\ntime_embedding: false\n"
                                                 "backbone_defaults: {transformer: {pos: rope}}\n")
    assert dw.main([str(path), "--configs", str(protocol)]) == 0  # the protocol's Transformer now has rope
    out = capsys.readouterr().out.splitlines()
    assert "transformer+no-time window" in out[2] and "not the protocol (transformer+rope+no-time)" in out[2]
    assert "transformer+rope+no-time window" in out[3] and "SHORT not >= BC 58.8" in out[3]
    assert dw.main([str(tmp_path / "missing.csv")]) == 2


def test_flip_rates_count_upside_down_episodes_of_every_evaluation_at_the_highest_target(data_root, tmp_path):
    """scripts/flip_rates.py on hand-made run records: every evaluation counts (not only the last), only the
    highest target's episodes, BC's 'state' row, runs of another task and unfinished runs left out; and the
    data's own count on the tiny random-Hopper dataset (no episode ends upside down there)."""
    from helpers import load_module

    fr = load_module(REPO / "scripts" / "flip_rates.py", "flip_rates")

    def run(name, agent, evals, finished=True):
        d = tmp_path / "runs" / name
        d.mkdir(parents=True)
        (d / "config.yaml").write_text(yaml.safe_dump({"env": "halfcheetah", "dataset": "medium", "seed": 0,
                                                       **({"agent": "bc"} if agent == "bc" else {"backbone": agent})}))
        if finished:
            (d / "done.json").write_text(json.dumps({"agent": agent}))
        (d / "evals.jsonl").write_text("".join(json.dumps({"step": s, "results": [
            {"target": t, "rollout": ro, "normalized": n, "upside_down": u} for t, ro, n, u in res]}) + "\n"
            for s, res in evals))

    run("halfcheetah__medium__mingru__0__1", "mingru", [
        (1000, [(12000.0, "window", [30.0, 10.0], [False, True]), (6000.0, "window", [5.0], [True])]),
        (2000, [(12000.0, "window", [40.0, 20.0], [False, False])])])
    run("halfcheetah__medium__mingru__1__2", "mingru", [(1000, [(12000.0, "window", [50.0], [True])])])
    run("halfcheetah__medium__bc__0__3", "bc", [(2000, [(None, "state", [36.0, 38.0], [False, False])])])
    run("halfcheetah__medium-replay__mingru__0__4", "mingru", [(1000, [(12000.0, "window", [1.0], [True])])])
    run("halfcheetah__medium__mingru__2__5", "mingru", [(1000, [(12000.0, "window", [9.0], [True])])], False)
    rows = fr.run_rates(tmp_path / "runs", "halfcheetah__medium")
    assert rows == {("mingru", "window"): [(30.0, False), (10.0, True), (40.0, False), (20.0, False), (50.0, True)],
                    ("bc", "state"): [(36.0, False), (38.0, False)]}
    n, flipped, _, rest = fr.data_rate("test/hopper/medium-v0")
    import minari

    returns = [float(np.sum(ep.rewards)) for ep in minari.load_dataset("test/hopper/medium-v0").iterate_episodes()]
    assert (n, flipped) == (6, 0) and rest == pytest.approx(np.mean(returns))
