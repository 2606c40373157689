"""Make D4RL-recipe datasets on a machine that cannot download them (needs ``pip install seqrl[maker]``).

    python -m seqrl.datasets.make --env hopper --level medium medium-replay
    python -m seqrl.datasets.make --env hopper --level expert medium-expert

The recipe (D4RL's, as ../shared/data/README.md describes it):

1. Train SAC (stable-baselines3 defaults: MlpPolicy 256x256, lr 3e-4, batch 256, buffer 1M,
   learning_starts 10k) online on the Gymnasium MuJoCo env, evaluating the deterministic policy
   every ``eval_every`` steps on ``eval_episodes`` episodes (reset seeds 1000, 1001, ...).
2. Stop at the first evaluation inside the level's band: ``medium`` about 1/3 of the expert
   reference (Hopper [1300, 1900], HalfCheetah [4000, 5400], Walker2d [1800, 3000]), ``expert``
   at 90% of the reference expert score or more. The same SAC run goes on from medium to expert.
3. ``medium`` / ``expert``: roll the policy out with actions sampled from its stochastic
   (tanh-Gaussian) distribution, reset seeds 0, 1, 2, ..., episodes ending on termination or the
   1,000-step time limit, until exactly ``transitions`` transitions (the last episode cut and
   marked truncated).
4. ``medium-replay``: every transition in SAC's replay buffer up to the medium stop, in time
   order, split into episodes at terminations and time limits.
5. ``medium-expert``: the medium episodes followed by the expert episodes (as D4RL stitched them).

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

import gymnasium as gym
import h5py
import numpy as np
from tqdm import tqdm

from seqrl.envs.tasks import Task, get_task
from seqrl.errors import SEED_RULE, SeqRLError, check_flags, seed_ok

Level = Literal["medium", "medium-replay", "expert", "medium-expert"]
MEDIUM_BANDS = {"hopper": (1300.0, 1900.0), "halfcheetah": (4000.0, 5400.0), "walker2d": (1800.0, 3000.0)}
ENV_IDS = {"hopper": "Hopper-v5", "halfcheetah": "HalfCheetah-v5", "walker2d": "Walker2d-v5"}
EVAL_SEED = 1000


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
    threads: int = 1
    """torch CPU threads for SAC."""
    overwrite: bool = False
    """Replace datasets that exist already."""


def check_args(args: MakeArgs) -> None:
    """Every flag in range before SAC starts (the env name is checked by ``get_task``)."""
    get_task(args.env)
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


def bands(args: MakeArgs, task: Task) -> dict[str, tuple[float, float]]:
    return {
        "medium": args.medium_band or MEDIUM_BANDS[task.name],
        "expert": args.expert_band or (0.9 * task.ref_max_score, math.inf),
    }


class SACRun:
    """One SAC run, resumable, that stops at the first evaluation inside a band."""

    def __init__(self, args: MakeArgs, task: Task) -> None:
        try:
            from stable_baselines3 import SAC
        except ImportError:
            raise SeqRLError("The dataset maker needs stable-baselines3: pip install 'seqrl[maker]'.") from None
        self.args, self.task = args, task
        self.dir = args.work_dir / task.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.dir / "state.json"
        self.env_id = ENV_IDS[task.name]
        self.eval_env = gym.make(self.env_id)
        latest = self.dir / "sac_latest.zip"
        if latest.is_file():
            self.model = SAC.load(latest, env=gym.make(self.env_id), device="cpu")
            self.model.load_replay_buffer(self.dir / "buffer_latest.pkl")
            self.state = json.loads(self.state_path.read_text())
            print(f"[make] resuming SAC from {latest} at {self.model.num_timesteps} steps")
        else:
            self.model = SAC("MlpPolicy", gym.make(self.env_id), seed=args.seed, device="cpu",
                             learning_starts=args.learning_starts, verbose=0)
            self.state = {"evals": [], "stops": {}}

    def evaluate(self) -> float:
        rets = []
        for i in range(self.args.eval_episodes):
            obs, _ = self.eval_env.reset(seed=EVAL_SEED + i)
            done, total = False, 0.0
            while not done:
                act, _ = self.model.predict(obs, deterministic=True)
                obs, r, term, trunc, _ = self.eval_env.step(act)
                total += float(r)
                done = term or trunc
            rets.append(total)
        return float(np.mean(rets))

    def save(self, tag: str) -> None:
        self.model.save(self.dir / f"sac_{tag}.zip")
        self.model.save_replay_buffer(self.dir / f"buffer_{tag}.pkl")
        self.state_path.write_text(json.dumps(self.state, indent=1))

    def train_until(self, level: str, band: tuple[float, float]):
        """Train until an evaluation lands in ``band``; saves and returns (model, replay buffer) at that stop."""
        from stable_baselines3 import SAC

        if level in self.state["stops"]:
            path = self.dir / f"sac_{level}.zip"
            model = SAC.load(path, device="cpu")
            model.load_replay_buffer(self.dir / f"buffer_{level}.pkl")
            print(f"[make] SAC reached {level} before (step {self.state['stops'][level]['step']}): {path}")
            return model
        lo, hi = band
        bar = tqdm(total=self.args.max_sac_steps, initial=self.model.num_timesteps, desc=f"SAC to {level}", unit="step")
        try:
            while self.model.num_timesteps < self.args.max_sac_steps:
                before = self.model.num_timesteps
                self.model.learn(self.args.eval_every, reset_num_timesteps=False, progress_bar=False)
                bar.update(self.model.num_timesteps - before)
                ret = self.evaluate()
                self.state["evals"].append({"step": self.model.num_timesteps, "return": ret})
                bar.set_postfix(det_return=f"{ret:.0f}", band=f"[{lo:g}, {hi:g}]")
                if lo <= ret <= hi:
                    self.state["stops"][level] = {"step": self.model.num_timesteps, "return": ret}
                    self.save(level)
                    self.save("latest")
                    return self.model
                if ret > hi and level == "medium":
                    raise SeqRLError(
                        f"SAC jumped past the medium band [{lo:g}, {hi:g}] (deterministic return {ret:.0f} at "
                        f"{self.model.num_timesteps} steps). Evaluate more often (--eval-every) or widen --medium-band."
                    )
                self.save("latest")
        finally:
            bar.close()
        raise SeqRLError(f"SAC did not reach the {level} band [{lo:g}, {hi:g}] in {self.args.max_sac_steps} steps.")


def rollout_episodes(model, env_id: str, transitions: int, desc: str) -> list[dict]:
    """Stochastic-policy episodes, reset seeds 0, 1, ...; exactly ``transitions`` steps, the last cut (truncated)."""
    env = gym.make(env_id)
    episodes, total, seed = [], 0, 0
    with tqdm(total=transitions, desc=desc, unit="step") as bar:
        while total < transitions:
            obs, _ = env.reset(seed=seed)
            ep = {"seed": seed, "observations": [obs], "actions": [], "rewards": [], "terminations": [], "truncations": []}
            done = False
            while not done:
                act, _ = model.predict(obs, deterministic=False)
                obs, r, term, trunc, _ = env.step(act)
                total += 1
                cut = total == transitions
                ep["observations"].append(obs)
                ep["actions"].append(act)
                ep["rewards"].append(float(r))
                ep["terminations"].append(bool(term))
                ep["truncations"].append(bool(trunc or (cut and not term)))
                done = term or trunc or cut
            bar.update(len(ep["actions"]))
            episodes.append(ep)
            seed += 1
    env.close()
    return episodes


def replay_episodes(model) -> list[dict]:
    """SAC's replay buffer, in time order, split into episodes at terminations and time limits."""
    buf = model.replay_buffer
    n = buf.buffer_size if buf.full else buf.pos
    if buf.full:
        raise SeqRLError("The replay buffer wrapped around before the medium stop; medium-replay would be incomplete.")
    obs, nxt = buf.observations[:n, 0], buf.next_observations[:n, 0]
    acts, rews = buf.actions[:n, 0], buf.rewards[:n, 0]
    dones, timeouts = buf.dones[:n, 0].astype(bool), buf.timeouts[:n, 0].astype(bool)
    ends = list(np.flatnonzero(dones) + 1)
    if not ends or ends[-1] != n:
        ends.append(n)  # the episode running at the stop: cut, truncated
    episodes, start = [], 0
    for end in ends:
        term = bool(dones[end - 1] and not timeouts[end - 1])
        episodes.append({
            "seed": None,
            "observations": list(obs[start:end]) + [nxt[end - 1]],
            "actions": list(acts[start:end]),
            "rewards": [float(r) for r in rews[start:end]],
            "terminations": [False] * (end - start - 1) + [term],
            "truncations": [False] * (end - start - 1) + [not term],
        })
        start = end
    return episodes


def _gzip_rewrite(path: Path) -> None:
    """Rewrite an hdf5 file with every dataset gzip-compressed (h5py reads it transparently)."""
    tmp = path.with_suffix(".gz.tmp")
    with h5py.File(path, "r") as src, h5py.File(tmp, "w") as dst:
        def copy(group_src, group_dst):
            group_dst.attrs.update(dict(group_src.attrs))
            for k, v in group_src.items():
                if isinstance(v, h5py.Group):
                    copy(v, group_dst.create_group(k))
                else:
                    kw = {"compression": "gzip"} if v.shape else {}
                    d = group_dst.create_dataset(k, data=v[()], **kw)
                    d.attrs.update(dict(v.attrs))
        copy(src, dst)
    os.replace(tmp, path)


def write_dataset(dataset_id: str, episodes: list[dict], env_id: str, task: Task, description: str, root: Path) -> Path:
    import minari
    from minari.data_collector import EpisodeBuffer

    os.environ["MINARI_DATASETS_PATH"] = str(root)
    buffers = [
        EpisodeBuffer(
            id=i, seed=ep["seed"], observations=np.asarray(ep["observations"], np.float32),
            actions=np.asarray(ep["actions"], np.float32), rewards=ep["rewards"],
            terminations=ep["terminations"], truncations=ep["truncations"],
        )
        for i, ep in enumerate(episodes)
    ]
    env = gym.make(env_id)
    minari.create_dataset_from_buffers(
        dataset_id=dataset_id, buffer=buffers, env=env, eval_env=env_id, algorithm_name="SAC (stable-baselines3)",
        author="seqrl dataset maker", author_email="seqrl@users.noreply.invalid",
        code_permalink="seqrl/datasets/make.py", ref_min_score=task.ref_min_score, ref_max_score=task.ref_max_score,
        description=description,
    )
    env.close()
    path = root / dataset_id / "data" / "main_data.hdf5"
    _gzip_rewrite(path)
    return path


def summary_row(dataset_id: str, episodes: list[dict], task: Task) -> str:
    rets = np.array([sum(ep["rewards"]) for ep in episodes])
    n = sum(len(ep["actions"]) for ep in episodes)
    norm = 100 * (rets.mean() - task.ref_min_score) / (task.ref_max_score - task.ref_min_score)
    return f"| {dataset_id} | {len(episodes)} | {n:,} | {rets.mean():.1f} ± {rets.std():.1f} | {norm:.1f} |"


def make(args: MakeArgs) -> list[str]:
    import torch

    task = get_task(args.env)
    torch.set_num_threads(args.threads)
    root = args.out or Path(os.environ.get("MINARI_DATASETS_PATH", Path.home() / ".minari" / "datasets"))
    ids = {lv: f"{args.namespace}/{task.name}/{lv}-v{args.version}" for lv in args.level}
    for lv, did in ids.items():
        if (root / did).exists():
            if not args.overwrite:
                raise SeqRLError(f"{did} exists under {root}; pass --overwrite to replace it.")
            shutil.rmtree(root / did)
    b = bands(args, task)
    run = SACRun(args, task)
    recipe = (f"D4RL recipe (seqrl.datasets.make): SAC (stable-baselines3 defaults, seed {args.seed}) on {run.env_id}, "
              f"deterministic evaluation every {args.eval_every} steps on {args.eval_episodes} episodes (seeds "
              f"{EVAL_SEED}+), stop bands medium {b['medium']}, expert {b['expert']}; rollouts with the stochastic "
              f"policy, reset seeds 0, 1, ...")
    rows, episodes = [], {}
    need_medium = {"medium", "medium-replay", "medium-expert"} & set(args.level)
    need_expert = {"expert", "medium-expert"} & set(args.level)
    if need_medium:
        model = run.train_until("medium", b["medium"])
        if {"medium", "medium-expert"} & set(args.level):
            episodes["medium"] = rollout_episodes(model, run.env_id, args.transitions, "medium rollouts")
        if "medium-replay" in args.level:
            episodes["medium-replay"] = replay_episodes(model)
    if need_expert:
        model = run.train_until("expert", b["expert"])
        episodes["expert"] = rollout_episodes(model, run.env_id, args.transitions, "expert rollouts")
    if "medium-expert" in args.level:
        episodes["medium-expert"] = episodes["medium"] + episodes["expert"]
    for lv in args.level:
        stops = ", ".join(f"{k} at step {v['step']} (det. return {v['return']:.1f})" for k, v in run.state["stops"].items())
        desc = f"{task.name} {lv}: {recipe}. SAC stops: {stops}."
        path = write_dataset(ids[lv], episodes[lv], run.env_id, task, desc, root)
        rows.append(summary_row(ids[lv], episodes[lv], task))
        print(f"[make] wrote {ids[lv]} -> {path}")
    print("\n| id | episodes | transitions | return (mean ± std) | normalized |\n|---|---:|---:|---:|---:|")
    print("\n".join(rows))
    return list(ids.values())


def main(argv: list[str] | None = None) -> int:
    import tyro

    args = tyro.cli(MakeArgs, args=argv, description=__doc__)
    try:
        check_args(args)
        make(args)
    except SeqRLError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
