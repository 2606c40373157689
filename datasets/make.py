"""Make D4RL-recipe datasets on a machine that cannot download them (needs ``pip install seqrl[maker]``).

    python -m seqrl.datasets.make --env hopper --level medium medium-replay
    python -m seqrl.datasets.make --env hopper --level expert --algo tqc --policy-out policies
    python -m seqrl.datasets.make --env hopper --level expert medium-expert --algo tqc \
        --from-policy policies/hopper-expert-tqc.zip          # from the committed policy, without training

The recipe (D4RL's, as ../shared/data/README.md describes it):

1. Train SAC (stable-baselines3 defaults: MlpPolicy 256x256, lr 3e-4, batch 256, buffer 1M,
   learning_starts 10k) online on the task's Gymnasium MuJoCo env (listed below), evaluating
   the deterministic policy every ``eval_every`` steps on ``eval_episodes`` episodes (reset
   seeds 1000, 1001, ...).
2. Stop at the first evaluation inside the level's band: ``medium`` about 1/3 of the expert
   reference (each task's band is listed below), ``expert`` at 90% of the reference expert
   score or more. The same SAC run goes on from medium to expert.
3. ``medium`` / ``expert``: roll the policy out with actions sampled from its stochastic
   (tanh-Gaussian) distribution, reset seeds 0, 1, 2, ..., episodes ending on termination or the
   1,000-step time limit, until exactly ``transitions`` transitions (the last episode cut and
   marked truncated).
4. ``medium-replay``: every transition in SAC's replay buffer up to the medium stop, in time
   order, split into episodes at terminations and time limits.
5. ``medium-expert``: the medium episodes followed by the expert episodes (as D4RL stitched them).

The expert policies in ``policies/`` were trained with ``--algo tqc`` (TQC, sb3-contrib: it reaches the expert
band in far fewer steps than SAC, which at 1M steps stays below HalfCheetah's) and kept with ``--policy-out``.
``--from-policy FILE`` makes ``expert`` (``transitions`` of its rollouts) and ``medium-expert`` from such a file
without training: the local medium dataset (``--medium-dataset``) followed by as many expert transitions as it
has, so that it is half medium and half expert as D4RL's is (the local halfcheetah and walker2d medium datasets
hold 300k transitions, so theirs are 300k + 300k; hopper's 1M + 1M); the policy's sampling is seeded with
``--seed``, so the same file gives the same datasets.

Datasets are written with ``minari`` (float32, gzip), with D4RL's reference scores and the
recipe and seeds in their metadata. SAC checkpoints and its replay buffer are saved in
``work_dir`` every evaluation, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from seqrl.core.command import run_command
from seqrl.core.errors import SEED_RULE, SeqRLError, check_flags, seed_ok
from seqrl.core.files import writable_folder
from seqrl.core.tasks import TASKS, Task, get_task, normalized_score

from .minari_data import minari_root
from .minari_writer import RawEpisode, write_dataset
from .sac_trainer import (EVAL_SEED, SACRun, algo_kwargs, export_policy, load_policy, minari_episodes,
                          replay_episodes, rollout_episodes, take_transitions)

# This module is the maker's command line and the recipe's steps in order. SAC and the episodes it yields:
# sac_trainer.py; the Minari writer: minari_writer.py; per-task env, bands, reference scores: seqrl.core.tasks.

Level = Literal["medium", "medium-replay", "expert", "medium-expert"]


@dataclass
class MakeArgs:
    """Make D4RL-recipe Minari datasets with SAC (see the module docstring)."""

    env: str
    """Task: hopper, halfcheetah or walker2d."""
    level: list[Level] = field(default_factory=lambda: ["medium", "medium-replay"])
    """Datasets to write."""
    namespace: str = "local"
    """Dataset ids are <namespace>/<env>/<level>-v<version>."""
    version: int = 0
    """Dataset version number (the -v<version> of the id)."""
    out: Path | None = None
    """Minari root to write into (default: $MINARI_DATASETS_PATH or ~/.minari/datasets)."""
    work_dir: Path = Path("runs/make")
    """SAC checkpoints, replay buffer and progress (resumable)."""
    seed: int = 0
    """Seed of SAC and of the rollouts' first reset (episode i is reset with seed + i)."""
    transitions: int = 1_000_000
    """Transitions of the medium and expert datasets."""
    max_sac_steps: int = 3_000_000
    """Give up if SAC has not reached the band by then."""
    eval_every: int = 10_000
    """Evaluate SAC's deterministic policy every this many environment steps."""
    eval_episodes: int = 10
    """Episodes per SAC evaluation."""
    learning_starts: int = 10_000
    """SAC's random-action steps before learning starts."""
    medium_band: tuple[float, float] | None = None
    """Override the medium stop band (low high)."""
    expert_band: tuple[float, float] | None = None
    """Override the expert stop band (low high)."""
    algo: Literal["sac", "tqc"] = "sac"
    """The online learner: SAC (stable-baselines3; the recipe that made ../shared/data's medium datasets) or TQC
    (sb3-contrib, Kuznetsov et al. 2020; reaches the expert band in far fewer steps). Its work dir is
    <work_dir>/<env>/<algo> apart from SAC's."""
    from_policy: Path | None = None
    """Make expert / medium-expert from this policy file (policies/<env>-expert-<algo>.zip), without training
    (pass the --algo it was trained with)."""
    medium_dataset: str | None = None
    """The medium dataset medium-expert starts with, a Minari id (default local/<env>/medium-v0, found through
    MINARI_DATASETS_PATH)."""
    policy_out: Path | None = None
    """Also keep the expert policy here as a small artifact (<env>-expert-<algo>.zip and .json: how it was made
    and its evaluations), e.g. policies/."""
    threads: int = 1
    """torch CPU threads for SAC."""
    overwrite: bool = False
    """Replace datasets that exist already."""


STAGING = ".seqrl-make-staging"  # under the Minari root: datasets being written, moved into place once whole


def check_args(args: MakeArgs) -> None:
    """Every flag in range and every output folder writable before SAC starts (the env name is checked by
    ``get_task``)."""
    get_task(args.env)
    writable_folder(args.out or minari_root(), "--out")
    writable_folder(args.work_dir, "--work-dir")
    if args.policy_out is not None:
        writable_folder(args.policy_out, "--policy-out")
    band_ok = lambda b: b is None or (b[0] < b[1] and not math.isnan(b[0]) and not math.isnan(b[1]))  # noqa: E731
    check_flags([
        ("level", len(args.level) > 0, "one or more levels", args.level),
        ("namespace", bool(re.fullmatch(r"[A-Za-z0-9_-]+", args.namespace)), "letters, digits, '_' or '-'", args.namespace),
        ("version", args.version >= 0, ">= 0", args.version),
        ("seed", seed_ok(args.seed), SEED_RULE, args.seed),
        ("transitions", args.transitions >= 1, ">= 1", args.transitions),
        ("max_sac_steps", args.max_sac_steps >= 1, ">= 1", args.max_sac_steps),
        ("eval_every", args.eval_every >= 1, ">= 1", args.eval_every),
        ("eval_episodes", args.eval_episodes >= 1, ">= 1", args.eval_episodes),
        ("learning_starts", args.learning_starts >= 0, ">= 0", args.learning_starts),
        ("medium_band", band_ok(args.medium_band), "LOW HIGH with LOW < HIGH", args.medium_band),
        ("expert_band", band_ok(args.expert_band), "LOW HIGH with LOW < HIGH", args.expert_band),
        ("threads", args.threads >= 1, ">= 1", args.threads),
    ])
    if args.from_policy is not None and not set(args.level) <= {"expert", "medium-expert"}:
        raise SeqRLError(f"--from-policy makes expert and medium-expert only; {', '.join(sorted(set(args.level) - {'expert', 'medium-expert'}))} "
                         "need(s) the SAC run (drop --from-policy for them).")


def default_bands(task: Task) -> dict[str, tuple[float, float]]:
    """The stop band of each SAC level: the task's medium band, and 90% of its expert reference or more."""
    return {"medium": task.medium_band, "expert": (0.9 * task.ref_max_score, math.inf)}


def bands(args: MakeArgs, task: Task) -> dict[str, tuple[float, float]]:
    """The stop bands of a run: the flags', else the defaults."""
    default = default_bands(task)
    return {"medium": args.medium_band or default["medium"], "expert": args.expert_band or default["expert"]}


def summary_row(dataset_id: str, episodes: list[RawEpisode], task: Task) -> str:
    """One row of the summary table: id, episodes, transitions, return (mean ± std), normalized mean return."""
    rets = np.array([sum(ep["rewards"]) for ep in episodes])
    n = sum(len(ep["actions"]) for ep in episodes)
    norm = normalized_score(rets.mean(), *task.ref_scores)
    return f"| {dataset_id} | {len(episodes)} | {n:,} | {rets.mean():.1f} ± {rets.std():.1f} | {norm:.1f} |"


def make(args: MakeArgs) -> list[str]:
    """Write the datasets of ``args.level``; returns their ids."""
    import torch

    from seqrl.core.mujoco_warnings import route_mujoco_warnings

    route_mujoco_warnings()  # the SAC run and the dataset writer make envs of their own
    task = get_task(args.env)
    torch.set_num_threads(args.threads)
    root = args.out or minari_root()
    ids = {lv: f"{args.namespace}/{task.name}/{lv}-v{args.version}" for lv in args.level}
    taken = [did for did in ids.values() if (root / did).exists()]
    if taken and not args.overwrite:
        raise SeqRLError(f"{', '.join(taken)} exist(s) under {root}; pass --overwrite to replace them.")
    made = from_policy(args, task) if args.from_policy else from_training(args, task)
    # every dataset is written under a staging folder first, then moved into place: an interruption or a full disk
    # leaves the datasets that were there whole
    staging = root / STAGING
    shutil.rmtree(staging, ignore_errors=True)  # an earlier interrupted write's (the maker's own folder)
    rows: list[str] = []
    for lv in args.level:
        episodes, desc = made[lv]
        write_dataset(ids[lv], episodes, task.maker_env_id, task.ref_scores, algo_name(args.algo), desc, staging)
        rows.append(summary_row(ids[lv], episodes, task))
    for lv in args.level:
        if ids[lv] in taken:
            shutil.rmtree(root / ids[lv])
        (root / ids[lv]).parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / ids[lv], root / ids[lv])
        print(f"[make] wrote {ids[lv]} -> {root / ids[lv] / 'data' / 'main_data.hdf5'}")
    shutil.rmtree(staging, ignore_errors=True)
    os.environ["MINARI_DATASETS_PATH"] = str(root)  # as write_dataset left it, now that the datasets are there
    print("\n| id | episodes | transitions | return (mean ± std) | normalized |\n|---|---:|---:|---:|---:|")
    print("\n".join(rows))
    return list(ids.values())


Made = dict[str, tuple[list[RawEpisode], str]]  # level -> (episodes, the dataset's description)


def algo_name(algo: str) -> str:
    return "SAC (stable-baselines3)" if algo == "sac" else "TQC (sb3-contrib)"


def from_training(args: MakeArgs, task: Task) -> Made:
    """The recipe's steps in order: SAC (or TQC) trained to each band, its rollouts and replay buffer."""
    b = bands(args, task)
    work = args.work_dir / task.name if args.algo == "sac" else args.work_dir / task.name / args.algo
    run = SACRun(task.maker_env_id, work, args.seed, args.learning_starts, args.eval_every,
                 args.eval_episodes, args.max_sac_steps, args.algo)
    learner = "SAC (stable-baselines3 defaults" if args.algo == "sac" else \
        f"TQC (sb3-contrib defaults, {algo_kwargs(args.algo, run.env_id)}"
    recipe = (f"D4RL recipe (seqrl.datasets.make): {learner}, seed {args.seed}) on {run.env_id}, "
              f"deterministic evaluation every {args.eval_every} steps on {args.eval_episodes} episodes (seeds "
              f"{EVAL_SEED}+), stop bands medium {b['medium']}, expert {b['expert']}; rollouts with the stochastic "
              f"policy, reset seeds 0, 1, ...")
    episodes: dict[str, list[RawEpisode]] = {}
    if {"medium", "medium-replay", "medium-expert"} & set(args.level):
        model = run.train_until("medium", b["medium"])
        if {"medium", "medium-expert"} & set(args.level):
            episodes["medium"] = rollout_episodes(model, run.env_id, args.transitions, "medium rollouts")
        if "medium-replay" in args.level:
            episodes["medium-replay"] = replay_episodes(model)
    if {"expert", "medium-expert"} & set(args.level):
        model = run.train_until("expert", b["expert"])
        if args.policy_out is not None:  # kept before the rollouts, which an interruption may cut short
            print(f"[make] expert policy -> {export_policy(run, 'expert', args.policy_out, recipe)}", flush=True)
        episodes["expert"] = rollout_episodes(model, run.env_id, args.transitions, "expert rollouts")
    if "medium-expert" in args.level:
        episodes["medium-expert"] = episodes["medium"] + episodes["expert"]
    stops = ", ".join(f"{k} at step {v['step']} (det. return {v['return']:.1f})" for k, v in run.state["stops"].items())
    return {lv: (episodes[lv], f"{task.name} {lv}: {recipe}. {args.algo.upper()} stops: {stops}.") for lv in args.level}


def from_policy(args: MakeArgs, task: Task) -> Made:
    """``expert`` and ``medium-expert`` from a policy file, without training: its stochastic rollouts (reset seeds
    0, 1, ..., its sampling seeded with ``--seed``), and the medium dataset's episodes followed by as many expert
    transitions as it has (D4RL's medium-expert is half medium, half expert)."""
    model = load_policy(args.from_policy, args.algo)
    made_by = f"the {args.algo.upper()} policy {args.from_policy.name}"
    info = args.from_policy.with_suffix(".json")
    if info.is_file():
        made_by += f" ({json.loads(info.read_text()).get('recipe', '')})"
    medium: list[RawEpisode] = []
    medium_id = args.medium_dataset or f"local/{task.name}/medium-v0"
    if "medium-expert" in args.level:
        medium = minari_episodes(medium_id)
    n_medium = sum(len(ep["actions"]) for ep in medium)
    n_expert = args.transitions if "expert" in args.level else 0
    expert = rollout_episodes(model, task.maker_env_id, max(n_expert, n_medium), "expert rollouts", seed=args.seed)
    rollouts = (f"rollouts of {made_by} with its stochastic policy, reset seeds 0, 1, ..., sampling seeded "
                f"{args.seed}")
    made: Made = {}
    if "expert" in args.level:
        made["expert"] = (take_transitions(expert, n_expert), f"{task.name} expert: {rollouts}.")
    if "medium-expert" in args.level:
        made["medium-expert"] = (medium + take_transitions(expert, n_medium),
                                 f"{task.name} medium-expert: the {n_medium:,} transitions of {medium_id}, then the "
                                 f"first {n_medium:,} of the expert {rollouts}.")
    return made


def tasks_help() -> str:
    """The per-task facts the recipe uses (from ``seqrl.core.tasks``), for ``--help``."""
    rows = []
    for t in TASKS.values():
        b = default_bands(t)
        rows.append(f"  {t.name}: SAC in {t.maker_env_id}, medium band [{b['medium'][0]:g}, {b['medium'][1]:g}], "
                    f"expert >= {b['expert'][0]:g}")
    return "Tasks:\n" + "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    import tyro

    args = tyro.cli(MakeArgs, args=argv, description=f"{__doc__}\n{tasks_help()}")

    def body() -> int:
        check_args(args)
        make(args)
        return 0

    return run_command(body, lambda stop: f"stopped by {stop.name}; the datasets under {args.out or minari_root()} are "
                                          f"as they were, and the SAC run's progress up to its last evaluation is kept "
                                          f"in {args.work_dir}: the same command resumes it.")


if __name__ == "__main__":
    sys.exit(main())
