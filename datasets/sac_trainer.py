"""The dataset maker's policy source: SAC (stable-baselines3) trained online until it lands in a return band,
and the episodes taken from it (stochastic rollouts, or its replay buffer). Needs ``pip install seqrl[maker]``.

Used by ``python -m seqrl.datasets.make`` (the recipe is in its docstring); the env is plain Gymnasium.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from seqrl.errors import SeqRLError

from .minari_writer import RawEpisode

EVAL_SEED = 1000  # SAC's evaluation episodes are reset with seeds 1000, 1001, ...


class SACRun:
    """One SAC run in ``work_dir``, resumable, that stops at the first evaluation inside a band.

    Every ``eval_every`` environment steps the deterministic policy is evaluated on ``eval_episodes``
    episodes; the run's checkpoint, replay buffer and evaluations are saved then."""

    def __init__(self, env_id: str, work_dir: Path, seed: int, learning_starts: int, eval_every: int,
                 eval_episodes: int, max_steps: int) -> None:
        try:
            from stable_baselines3 import SAC
        except ImportError:
            raise SeqRLError("The dataset maker needs stable-baselines3: pip install 'seqrl[maker]'.") from None
        self.env_id, self.dir = env_id, work_dir
        self.eval_every, self.eval_episodes, self.max_steps = eval_every, eval_episodes, max_steps
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.dir / "state.json"
        self.eval_env = gym.make(env_id)
        latest = self.dir / "sac_latest.zip"
        if latest.is_file():
            self.model = SAC.load(latest, env=gym.make(env_id), device="cpu")
            self.model.load_replay_buffer(self.dir / "buffer_latest.pkl")
            self.state = json.loads(self.state_path.read_text())
            print(f"[make] resuming SAC from {latest} at {self.model.num_timesteps} steps")
        else:
            self.model = SAC("MlpPolicy", gym.make(env_id), seed=seed, device="cpu",
                             learning_starts=learning_starts, verbose=0)
            self.state = {"evals": [], "stops": {}}

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
        self.model.save(self.dir / f"sac_{tag}.zip")
        self.model.save_replay_buffer(self.dir / f"buffer_{tag}.pkl")
        self.state_path.write_text(json.dumps(self.state, indent=1))

    def train_until(self, level: str, band: tuple[float, float]) -> Any:
        """Train until an evaluation lands in ``band``; saves and returns the SAC model (with its replay buffer)
        at that stop. A level reached before (``state.json``) is loaded instead of trained again."""
        from stable_baselines3 import SAC

        if level in self.state["stops"]:
            path = self.dir / f"sac_{level}.zip"
            model = SAC.load(path, device="cpu")
            model.load_replay_buffer(self.dir / f"buffer_{level}.pkl")
            print(f"[make] SAC reached {level} before (step {self.state['stops'][level]['step']}): {path}")
            return model
        lo, hi = band
        bar = tqdm(total=self.max_steps, initial=self.model.num_timesteps, desc=f"SAC to {level}", unit="step")
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
                        f"SAC jumped past the medium band [{lo:g}, {hi:g}] (deterministic return {ret:.0f} at "
                        f"{self.model.num_timesteps} steps). Evaluate more often (--eval-every) or widen --medium-band."
                    )
                self.save("latest")
        finally:
            bar.close()
        raise SeqRLError(f"SAC did not reach the {level} band [{lo:g}, {hi:g}] in {self.max_steps} steps.")


def rollout_episodes(model: Any, env_id: str, transitions: int, desc: str) -> list[RawEpisode]:
    """Stochastic-policy episodes, reset seeds 0, 1, ...; exactly ``transitions`` steps, the last cut (truncated)."""
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
