"""seqrl.results: the tables and plots from run directories and from results files (the same bytes from both),
the compact headline, the filters, and the flips and paired tables."""

from __future__ import annotations

import csv
import json

import pytest
import yaml

from run_dirs import fake_run

from seqrl.results import main as results_main


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


def test_results_into_block_is_replaced_and_bad_markers_fail_before_work(tmp_path, capsys):
    runs = tmp_path / "runs"
    fake_run(runs, "mingru", 0, {1000: 40.0, 2000: 60.0})
    readme = tmp_path / "README.md"
    readme.write_text("# T\nintro\n<!-- study:start -->\nold table\n<!-- study:end -->\nafter\n")
    args = [str(runs), "--out", str(tmp_path / "out"), "--no-plots", "--into", str(readme), "--block", "study"]
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


def test_results_file_gives_the_same_bytes_as_the_run_directories(tmp_path, capsys):
    """Run directories -> a results file -> the same results.md, results.csv and plots as from the directories,
    finished runs only or not; evaluate.py's final_eval.json counts as the last evaluation in both."""
    from seqrl.resultsfile import read_results_file, run_record, write_results_file

    runs = tmp_path / "runs"
    eps = {"length_mean": 300.0, "fell_fraction": 1.0, "upside_down_fraction": 0.1, "x_displacement_mean": 5.0}
    fake_run(runs, "mingru", 0, {1000: 80.0, 2000: 40.0}, episodes=eps, data=56.1, done={"params": 10, "updates_per_s": 3.0})
    fake_run(runs, "mingru", 1, {1000: 70.0, 2000: 50.5}, episodes=eps, data=56.1, done={"params": 10, "updates_per_s": 4.0})
    fake_run(runs, "mingru", 2, {1000: 90.0})  # unfinished, behind the others
    fake_run(runs, "transformer", 0, {2000: 60.0, 4000: 62.0}, extra={"agent": "bc"}, target=None, rollout="state",
             data=56.1)
    final = fake_run(runs, "transformer", 1, {1000: 30.0, 2000: 33.0}, data=56.1)
    (final / "final_eval.json").write_text(json.dumps({"results": [
        {"target": 3600.0, "rollout": "recurrent", "normalized_mean": 35.0, "normalized_std": 2.0}]}))
    file = tmp_path / "study.jsonl.gz"
    write_results_file(file, "study", [run_record(p) for p in sorted(runs.iterdir())])
    header, records = read_results_file(file)
    assert header == {"format": "seqrl-results", "version": 1, "study": "study", "runs": 5}
    assert [r["finished"] for r in records] == [True, True, False, True, True]
    assert records[0]["agent"] == "mingru" and records[0]["config"]["seed"] == 0 and records[0]["params"] == 10
    assert records[0]["config_hash"] == records[1]["config_hash"] != records[3]["config_hash"]  # seeds share it
    for finished in ([], ["--finished"]):
        outs = []
        for source in (runs, file):
            out = tmp_path / f"{source.name}{len(finished)}"
            assert results_main([str(source), "--out", str(out), "--wide", *finished]) == 0
            outs.append((out, capsys.readouterr().err))
        (a, a_err), (b, b_err) = outs
        assert a_err == b_err and ("mingru__2__2 left out" in a_err) != bool(finished)
        for name in ("results.md", "results.csv", "results_wide.md", "curves.png", "bars.png"):
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert "recurrent" in (a / "results.md").read_text()  # the final evaluation's rollout
    write_results_file(tmp_path / "again.jsonl.gz", "study", records)
    assert (tmp_path / "again.jsonl.gz").read_bytes() == file.read_bytes()  # byte-reproducible


def test_results_file_damaged_or_newer_is_a_clear_error(tmp_path, capsys):
    import gzip

    def write(name: str, lines: list) -> str:
        path = tmp_path / name
        with gzip.open(path, "wt") as f:
            f.write("".join(json.dumps(x) + "\n" for x in lines))
        return str(path)

    cases = {write("other.jsonl.gz", [{"hello": 1}]): "not a seqrl results file",
             write("newer.jsonl.gz", [{"format": "seqrl-results", "version": 99, "runs": 0}]): "format version 99",
             write("short.jsonl.gz", [{"format": "seqrl-results", "version": 1, "runs": 3}]): "says 3 runs, the file holds 0"}
    (tmp_path / "plain.jsonl.gz").write_text("not gzip")
    cases[str(tmp_path / "plain.jsonl.gz")] = "not a readable results file"
    for path, message in cases.items():
        assert results_main([path, "--out", str(tmp_path / "out")]) == 2
        assert message in capsys.readouterr().err


def test_results_filters_and_the_compact_headline(tmp_path, capsys):
    """--agents and --datasets keep some runs (their order is the compact table's); --compact: one row per dataset,
    mean ± std over seeds of the last evaluation with the best beside it, no per-seed values, a cell with fewer
    seeds marked, a rollout named only when an agent has two;
    --into puts that table into the block."""
    runs = tmp_path / "runs"
    for seed, (h, w) in enumerate([(50.0, 20.0), (60.0, 30.0)]):
        fake_run(runs, "mingru", seed, {500: h + 10, 1000: h}, data=56.1)  # its best is not its last
        fake_run(runs, "mingru", seed, {1000: w}, target=5000.0, extra={"env": "walker2d"}, data=35.7,
                 name=f"walker2d__medium__mingru__{seed}__1")
        fake_run(runs, "mingru", seed, {1000: h + 1}, rollout="recurrent", data=56.1,
                 name=f"hopper__medium__mingru__{seed}__r")
        fake_run(runs, "bc", seed, {1000: 40.0 + seed}, extra={"agent": "bc"}, target=None, rollout="state", data=56.1)
    fake_run(runs, "transformer", 0, {1000: 70.0}, data=56.1)
    fake_run(runs, "transformer", 0, {1000: 25.0}, target=5000.0, extra={"env": "walker2d"}, data=35.7,
             name="walker2d__medium__transformer__0__1")
    page = tmp_path / "page.md"
    page.write_text("# Page\n<!-- headline:start -->\n<!-- headline:end -->\n")
    assert results_main([str(runs), "--out", str(tmp_path / "out"), "--no-plots", "--agents", "transformer", "mingru",
                         "bc", "--datasets", "walker2d-medium", "hopper-medium", "--compact", "--into", str(page),
                         "--block", "headline"]) == 0
    table = (tmp_path / "out" / "headline.md").read_text()
    assert table in page.read_text() and "over 2 seeds (n: a cell with fewer)" in table
    lines = table.splitlines()
    assert lines[2] == "| dataset | data | R | transformer | mingru window | mingru recurrent | bc |"
    assert lines[4] == "| walker2d-medium | 35.7 | 5000 | 25.0 (best 25.0, n=1) | 25.0 ± 5.0 (best 25.0) | - | - |"
    assert lines[5] == ("| hopper-medium | 56.1 | 3600 | 70.0 (best 70.0, n=1) | 55.0 ± 5.0 (best 65.0) | 56.0 ± 5.0 (best 56.0) "
                        "| 40.5 ± 0.5 (best 40.5) |")
    assert lines[6] == "| mean of the 2 datasets | | | 47.5 | 40.0 | - | - |"  # over the datasets an agent has all of
    assert results_main([str(runs), "--out", str(tmp_path / "out2"), "--no-plots", "--agents", "transformer",
                         "--datasets", "walker2d-medium"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "out2" / "results.csv")))
    assert [(r["env"], r["agent"]) for r in rows] == [("walker2d", "transformer")]
    capsys.readouterr()
    assert results_main([str(runs), "--agents", "mingru", "gru", "--out", str(tmp_path / "out3")]) == 2
    assert "--agents gru: no run has that; the runs have: bc, mingru, transformer." in capsys.readouterr().err
    assert results_main([str(runs), "--datasets", "hopper", "--out", str(tmp_path / "out3")]) == 2
    assert "the runs have: hopper-medium, walker2d-medium." in capsys.readouterr().err


def test_results_flips_count_upside_down_episodes_of_every_evaluation_at_the_highest_target(tmp_path):
    """--flips: every evaluation counts (not only the last), only each evaluation's highest target, BC's 'state'
    row; datasets apart; --finished leaves unfinished runs out."""

    def run(name, agent, evals, finished=True):
        d = tmp_path / "runs" / name
        d.mkdir(parents=True)
        env, dataset = name.split("__")[:2]
        (d / "config.yaml").write_text(yaml.safe_dump({"env": env, "dataset": dataset, "seed": 0,
                                                       **({"agent": "bc"} if agent == "bc" else {"model": {"backbone": agent}})}))
        if finished:
            (d / "done.json").write_text(json.dumps({"agent": agent}))
        (d / "evals.jsonl").write_text("".join(json.dumps({"step": s, "results": [
            {"target": t, "rollout": ro, "normalized": n, "upside_down": u, "normalized_mean": sum(n) / len(n)}
            for t, ro, n, u in res]}) + "\n" for s, res in evals))

    run("halfcheetah__medium__mingru__0__1", "mingru", [
        (1000, [(12000.0, "window", [30.0, 10.0], [False, True]), (6000.0, "window", [5.0], [True])]),
        (2000, [(12000.0, "window", [40.0, 20.0], [False, False])])])
    run("halfcheetah__medium__mingru__1__2", "mingru", [(1000, [(12000.0, "window", [50.0], [True])])])
    run("halfcheetah__medium__bc__0__3", "bc", [(2000, [(None, "state", [36.0, 38.0], [False, False])])])
    run("halfcheetah__medium-replay__mingru__0__4", "mingru", [(1000, [(12000.0, "window", [1.0], [True])])])
    run("halfcheetah__medium__mingru__2__5", "mingru", [(1000, [(12000.0, "window", [9.0], [True])])], False)
    out = tmp_path / "out"
    assert results_main([str(tmp_path / "runs"), "--finished", "--flips", "--no-plots", "--out", str(out)]) == 0
    assert (out / "flips.md").read_text().splitlines()[2:] == [
        "| halfcheetah | medium | bc | state | 0/2 (0.0%) | 37.00 | 37.00 |",
        "| halfcheetah | medium | mingru | window | 2/5 (40.0%) | 30.00 | 30.00 |",
        "| halfcheetah | medium-replay | mingru | window | 1/1 (100.0%) | 1.00 | - |"]


def test_results_paired_compares_each_runs_last_evaluation_with_its_reevaluation(tmp_path, capsys):
    """--paired NAME: arm A the last evaluation, arm B <run>/NAME_eval.json, targets paired by rank (highest with
    highest), per rollout; runs without that evaluation make no pair."""
    runs = tmp_path / "runs"
    for seed, (a, b) in enumerate([(20.0, 30.0), (40.0, 35.0)]):
        d = runs / f"hopper__medium-replay__transformer__{seed}__1"
        d.mkdir(parents=True)
        (d / "config.yaml").write_text(yaml.safe_dump({"env": "hopper", "dataset": "medium-replay", "seed": seed,
                                                       "model": {"backbone": "transformer"}}))
        (d / "evals.jsonl").write_text(json.dumps({"step": 10, "results": [
            {"target": 3600.0, "rollout": "window", "normalized_mean": a},
            {"target": 1800.0, "rollout": "window", "normalized_mean": 9.0}]}) + "\n")
        (d / "data_best_eval.json").write_text(json.dumps({"results": [
            {"target": 2108.0, "rollout": "window", "normalized_mean": b}]}))
    fake_run(runs, "mingru", 0, {10: 50.0})  # no data_best_eval.json: no pair
    out = tmp_path / "out"
    assert results_main([str(runs), "--paired", "data_best", "--no-plots", "--out", str(out)]) == 0
    assert (out / "paired_data_best.md").read_text().splitlines() == [
        "| dataset | agent | rollout | R: A → B | pairs | A: last evaluation | B: data_best | B − A | seeds: A → B |",
        "|---|---|---|---|---:|---:|---:|---:|---|",
        "| hopper-medium-replay | transformer | window | 3600 → 2108 | 2 | 30.0 | 32.5 | +2.5 | 0: 20.0 → 30.0, 1: 40.0 → 35.0 |"]
    capsys.readouterr()
    assert results_main([str(runs), "--paired", "data_targets", "--out", str(out)]) == 2
    assert "--paired data_targets: no run has an evaluation of that name (data_targets_eval.json); the runs have: " \
           "data_best." in capsys.readouterr().err


def test_results_beside_shows_other_seeds_after_each_cell_where_they_exist(tmp_path, capsys):
    """--beside: the held-out seeds' table with the deciding seeds' mean after each cell of the same agent and
    dataset (an agent they lack: nothing added); it needs --compact, and a missing input fails before work."""
    held, decided = tmp_path / "held", tmp_path / "decided"
    for seed, score in ((3, 50.0), (4, 70.0)):
        fake_run(held, "mingru", seed, {1000: score}, data=56.1)
        fake_run(held, "transformer", seed, {1000: score + 1}, data=56.1)
    for seed, score in ((0, 80.0), (1, 90.0), (2, 40.0)):
        fake_run(decided, "mingru", seed, {500: 99.0, 1000: score}, data=56.1)
    fake_run(decided, "gru", 0, {1000: 10.0}, data=56.1)  # not in the held-out table: not shown
    out = tmp_path / "out"
    assert results_main([str(held), "--beside", str(decided), "--compact", "--no-plots", "--out", str(out)]) == 0
    lines = (out / "headline.md").read_text().splitlines()
    assert "After ';': the mean over seeds 0-2 of the same agent's last evaluation" in lines[0]
    assert lines[4] == "| hopper-medium | 56.1 | 3600 | 60.0 ± 10.0 (best 60.0); seeds 0-2: 70.0 | 61.0 ± 10.0 (best 61.0) |"
    capsys.readouterr()
    assert results_main([str(held), "--beside", str(decided), "--no-plots", "--out", str(out)]) == 2
    assert "--beside belongs to the compact table: add --compact." in capsys.readouterr().err
    assert results_main([str(held), "--beside", str(tmp_path / "nope"), "--compact", "--out", str(out)]) == 2
    assert "nope: no such run directory, folder or results file." in capsys.readouterr().err


def test_results_diagnostics_table_gives_what_the_last_evaluations_episodes_did(tmp_path, capsys):
    """--diagnostics: after the compact table, the same cells with the last evaluation's mean length, share fallen
    and x displacement, each the mean over seeds (an agent without them: '-'); it needs --compact."""
    runs = tmp_path / "runs"
    for seed, (length, fell, x) in enumerate([(1000.0, 0.0, 10.0), (500.0, 0.5, 4.0)]):
        fake_run(runs, "mingru", seed, {1000: 50.0}, data=56.1,
                 episodes={"length_mean": length, "fell_fraction": fell, "x_displacement_mean": x})
    fake_run(runs, "gru", 0, {1000: 40.0}, data=56.1)  # evaluations without diagnostics
    out = tmp_path / "out"
    assert results_main([str(runs), "--compact", "--diagnostics", "--agents", "mingru", "gru", "--no-plots",
                         "--out", str(out)]) == 0
    text = (out / "headline.md").read_text()
    assert "What the episodes of the same last evaluations did, mean over the seeds" in text
    assert text.splitlines()[-1] == "| hopper-medium | 56.1 | 3600 | 750 steps, 25% fell, x 7.0 m | - |"
    capsys.readouterr()
    assert results_main([str(runs), "--diagnostics", "--no-plots", "--out", str(out)]) == 2
    assert "--diagnostics belongs to the compact table: add --compact." in capsys.readouterr().err


def test_results_merge_shows_a_per_dataset_recipe_as_one_agent_and_refuses_to_mix_arms(tmp_path, capsys):
    """--merge NAME=A,B: each dataset's runs of A or B in one column NAME, the caption saying which label each
    took; other seeds (--beside) merged as the main runs took them; two of the labels on one dataset refused."""
    held, decided = tmp_path / "held", tmp_path / "decided"
    replay = {"dataset": "medium-replay"}
    for seed in (3, 4):
        fake_run(held, "mingru", seed, {1000: 50.0 + seed}, data=56.1)
        fake_run(held, "gru", seed, {1000: 20.0 + seed}, data=8.2, extra=replay, name=f"hopper__medium-replay__gru__{seed}")
    for seed, (a, b) in enumerate([(80.0, 10.0), (90.0, 20.0)]):  # both arms of an A/B on hopper-medium
        fake_run(decided, "mingru", seed, {1000: a}, data=56.1)
        fake_run(decided, "gru", seed, {1000: b}, data=56.1)
        fake_run(decided, "gru", seed, {1000: 30.0}, data=8.2, extra=replay, name=f"hopper__medium-replay__gru__{seed}")
    out = tmp_path / "out"
    assert results_main([str(held), "--merge", "rnn=mingru,gru", "--agents", "rnn", "--beside", str(decided),
                         "--compact", "--no-plots", "--out", str(out)]) == 0
    lines = (out / "headline.md").read_text().splitlines()
    assert lines[2] == "| dataset | data | R | rnn |"
    assert lines[4:6] == ["| hopper-medium | 56.1 | 3600 | 53.5 ± 0.5 (best 53.5); seeds 0-1: 85.0 |",
                          "| hopper-medium-replay | 8.2 | 3600 | 23.5 ± 0.5 (best 23.5); seeds 0-1: 30.0 |"]
    assert lines[-1] == ("Columns of an agent whose recipe differs by dataset (--merge), the label each took: rnn: mingru "
                         "on hopper-medium, gru on hopper-medium-replay.")
    capsys.readouterr()
    assert results_main([str(decided), "--merge", "rnn=mingru,gru", "--no-plots", "--out", str(out)]) == 2
    assert "--merge rnn: gru and mingru both have runs on hopper-medium; one column takes one label per dataset" \
        in capsys.readouterr().err
    # LABEL@DATASET: gru only on hopper-medium-replay, so hopper-medium's gru runs (the other arm) stay out of it
    assert results_main([str(decided), "--merge", "rnn=mingru,gru@hopper-medium-replay", "--agents", "rnn",
                         "--compact", "--no-plots", "--out", str(out)]) == 0
    lines = (out / "headline.md").read_text().splitlines()
    assert lines[4:6] == ["| hopper-medium | 56.1 | 3600 | 85.0 ± 5.0 (best 85.0) |",
                          "| hopper-medium-replay | 8.2 | 3600 | 30.0 ± 0.0 (best 30.0) |"]
    capsys.readouterr()
    assert results_main([str(decided), "--merge", "rnn=mingru,gru@", "--no-plots", "--out", str(out)]) == 2
    assert "--merge rnn=mingru,gru@: give NAME=LABEL,LABEL, a label only on some datasets as LABEL@DATASET+DATASET" \
        in capsys.readouterr().err
