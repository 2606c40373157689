"""The dataset maker's policy source: SAC (stable-baselines3) or TQC (sb3-contrib) trained online until it lands
in a return band, and the episodes taken from it (stochastic rollouts, or its replay buffer). Needs
``pip install seqrl[maker]``.

Used by ``python -m seqrl.datasets.make`` (the recipe is in its docstring); the env is plain Gymnasium.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from seqrl.core.errors import SeqRLError
from seqrl.core.files import write_atomic, write_text

from .minari_writer import RawEpisode

EVAL_SEED = 1000  # SAC's evaluation episodes are reset with seeds 1000, 1001, ...

# TQC (Kuznetsov et al. 2020) drops the top quantiles per critic net; the paper's per-task choice (its Table 5).
TQC_DROP_PER_NET = {"Hopper": 5, "HalfCheetah": 0, "Walker2d": 2}


def algo_class(algo: str) -> Any:
    """The stable-baselines3 class of ``algo`` ("sac", or "tqc" from sb3-contrib); a clear error if not installed."""
    try:
        if algo == "tqc":
            from sb3_contrib import TQC
            return TQC
        from stable_baselines3 import SAC
        return SAC
    except ImportError:
        raise SeqRLError(f"The dataset maker's {algo.upper()} needs stable-baselines3 and sb3-contrib: "
                         "pip install 'seqrl[maker]'.") from None


def algo_kwargs(algo: str, env_id: str) -> dict[str, Any]:
    """Keyword arguments beyond the library defaults: TQC's per-task quantile truncation."""
    if algo != "tqc":
        return {}
    drop = TQC_DROP_PER_NET.get(env_id.split("-")[0], 2)
    return {"top_quantiles_to_drop_per_net": drop}


class SACRun:
    """One SAC (or TQC) run in ``work_dir``, resumable, that stops at the first evaluation inside a band.

    Every ``eval_every`` environment steps the deterministic policy is evaluated on ``eval_episodes``
    episodes; the run's checkpoint, replay buffer and evaluations are saved then."""

    def __init__(self, env_id: str, work_dir: Path, seed: int, learning_starts: int, eval_every: int,
                 eval_episodes: int, max_steps: int, algo: str = "sac") -> None:
        self.algo, self.cls = algo, algo_class(algo)
        self.env_id, self.dir = env_id, work_dir
        self.eval_every, self.eval_episodes, self.max_steps = eval_every, eval_episodes, max_steps
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.dir / "state.json"
        self.eval_env = gym.make(env_id)
        latest = self.path("latest")
        if latest.is_file():
            self.model = self.cls.load(latest, env=gym.make(env_id), device="cpu")
            self.model.load_replay_buffer(self.dir / "buffer_latest.pkl")
            self.state = json.loads(self.state_path.read_text())
            print(f"[make] resuming {algo.upper()} from {latest} at {self.model.num_timesteps} steps")
        else:
            self.model = self.cls("MlpPolicy", gym.make(env_id), seed=seed, device="cpu",
                                  learning_starts=learning_starts, verbose=0, **algo_kwargs(algo, env_id))
            self.state = {"algo": algo, "evals": [], "stops": {}}

    def path(self, tag: str) -> Path:
        """The model file of a stop (``expert``) or of the latest evaluation (``latest``)."""
        return self.dir / f"{self.algo}_{tag}.zip"

    def evaluate(self) -> float:
        rets = []
        for i in range(self.eval_episodes):
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
        """Model, replay buffer and progress, each written to a temporary name and renamed, so a run killed while
        saving resumes from the files of the evaluation before."""
        files = [(self.path(tag), self.model.save), (self.dir / f"buffer_{tag}.pkl", self.model.save_replay_buffer),
                 (self.state_path, lambda p: Path(p).write_text(json.dumps(self.state, indent=1)))]
        for path, write in files:
            tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")
            write(tmp)
            os.replace(tmp, path)

    def train_until(self, level: str, band: tuple[float, float]) -> Any:
        """Train until an evaluation lands in ``band``; saves and returns the SAC model (with its replay buffer)
        at that stop. A level reached before (``state.json``) is loaded instead of trained again."""
        if level in self.state["stops"]:
            path = self.path(level)
            model = self.cls.load(path, device="cpu")
            model.load_replay_buffer(self.dir / f"buffer_{level}.pkl")
            print(f"[make] {self.algo.upper()} reached {level} before (step {self.state['stops'][level]['step']}): {path}")
            return model
        lo, hi = band
        bar = tqdm(total=self.max_steps, initial=self.model.num_timesteps, desc=f"{self.algo.upper()} to {level}", unit="step")
        try:
            while self.model.num_timesteps < self.max_steps:
                before = self.model.num_timesteps
                self.model.learn(self.eval_every, reset_num_timesteps=False, progress_bar=False)
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
                        f"{self.algo.upper()} jumped past the medium band [{lo:g}, {hi:g}] (deterministic return {ret:.0f} at "
                        f"{self.model.num_timesteps} steps). Evaluate more often (--eval-every) or widen --medium-band."
                    )
                self.save("latest")
        finally:
            bar.close()
        raise SeqRLError(f"{self.algo.upper()} did not reach the {level} band [{lo:g}, {hi:g}] in {self.max_steps} steps.")


def export_policy(run: SACRun, level: str, out_dir: Path, recipe: str) -> Path:
    """The model of a level's stop as a small versioned artifact, as D4RL published its behaviour policies:
    ``<out_dir>/<env>-<level>-<algo>.zip`` (stable-baselines3's own format: actor and critics, no replay buffer) and
    beside it ``.json`` with how it was made and the evaluations that show where it stopped."""
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"{run.env_id.split('-')[0].lower()}-{level}-{run.algo}"
    path = out_dir / f"{name}.zip"
    write_atomic(path, run.path(level).read_bytes())
    stop = run.state["stops"][level]
    info = {"env_id": run.env_id, "algo": run.algo, "level": level, "recipe": recipe, "stop": stop,
            "eval_episodes": run.eval_episodes, "eval_seeds": f"{EVAL_SEED}..{EVAL_SEED + run.eval_episodes - 1}",
            "evals": run.state["evals"]}
    write_text(out_dir / f"{name}.json", json.dumps(info, indent=1) + "\n")
    return path


def load_policy(path: Path, algo: str) -> Any:
    """A policy file of ``export_policy`` (or any SAC / TQC zip of stable-baselines3); a clear error otherwise."""
    if not path.is_file():
        raise SeqRLError(f"--from-policy {str(path)!r} does not exist. The committed expert policies are under policies/.")
    try:
        return algo_class(algo).load(path, device="cpu")
    except Exception as e:  # noqa: BLE001 (sb3 raises many kinds on a file that is not its zip)
        raise SeqRLError(f"--from-policy {str(path)!r} is not a {algo.upper()} model of stable-baselines3 "
                         f"({type(e).__name__}: {e}); pass the --algo it was trained with.") from None


def rollout_episodes(model: Any, env_id: str, transitions: int, desc: str, seed: int | None = None) -> list[RawEpisode]:
    """Stochastic-policy episodes, reset seeds 0, 1, ...; exactly ``transitions`` steps, the last cut (truncated).
    With ``seed`` the policy's sampling is seeded first, so the same policy file gives the same episodes."""
    if seed is not None:
        model.set_random_seed(seed)
    env = gym.make(env_id)
    episodes, total, seed = [], 0, 0
    with tqdm(total=transitions, desc=desc, unit="step") as bar:
        while total < transitions:
            obs, _ = env.reset(seed=seed)
            ep: RawEpisode = {"seed": seed, "observations": [obs], "actions": [], "rewards": [], "terminations": [],
                              "truncations": []}
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


def replay_episodes(model: Any) -> list[RawEpisode]:
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
    episodes: list[RawEpisode] = []
    start = 0
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


def take_transitions(episodes: list[RawEpisode], n: int) -> list[RawEpisode]:
    """The first ``n`` transitions of ``episodes``, the last episode cut there and marked truncated."""
    out: list[RawEpisode] = []
    left = n
    for ep in episodes:
        if left <= 0:
            break
        t = len(ep["actions"])
        if t <= left:
            out.append(ep)
        else:
            out.append({**ep, "observations": ep["observations"][: left + 1], "actions": ep["actions"][:left],
                        "rewards": ep["rewards"][:left], "terminations": [*ep["terminations"][: left - 1], False],
                        "truncations": [*ep["truncations"][: left - 1], True]})
        left -= min(t, left)
    return out


def minari_episodes(dataset_id: str) -> list[RawEpisode]:
    """A Minari dataset's episodes (found as ``minari`` finds it, through ``MINARI_DATASETS_PATH``)."""
    import minari

    try:
        data = minari.load_dataset(dataset_id)
    except Exception as e:  # noqa: BLE001 (minari raises several kinds for a missing or damaged dataset)
        raise SeqRLError(f"--medium-dataset {dataset_id!r} could not be loaded ({type(e).__name__}: {e}); "
                         "point MINARI_DATASETS_PATH at the folder that holds it.") from None
    return [{"seed": None, "observations": list(ep.observations), "actions": list(ep.actions),
             "rewards": [float(r) for r in ep.rewards], "terminations": [bool(x) for x in ep.terminations],
             "truncations": [bool(x) for x in ep.truncations]} for ep in data.iterate_episodes()]
