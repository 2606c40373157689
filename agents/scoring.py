"""Score an agent: episodes per (rollout mode, target return): returns, normalized scores, and what
each episode did (length, forward progress, whether it fell or ended upside down; see ``seqrl.envs.episodes``).

Here the dataset (its env, its reference scores) meets the env: ``env_maker`` decides which env a run is
evaluated in, so neither ``seqrl.datasets`` nor ``seqrl.envs`` needs the other."""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np
import torch

from seqrl.core.data_info import DatasetInfo
from seqrl.envs import Episode, check_dims, make_env, run_episodes, run_episodes_vectorized
from seqrl.envs.episodes import Policy

from .checkpoint import AgentBundle
from .kinds import evaluation_plan, make_policy


def env_maker(dataset: DatasetInfo, eval_env: str | None = None, **kwargs: Any) -> Callable[[], gym.Env]:
    """How to make the env a run is evaluated in: the ``--eval-env`` it named, else the dataset's own (its full
    Minari env spec when it has one, else its env id). ``kwargs`` go to ``gym.make`` (e.g. ``render_mode``)."""
    if eval_env:
        return functools.partial(make_env, eval_env, dataset_name=dataset.name, **kwargs)
    return functools.partial(make_env, dataset.env_id, dataset.env_spec_json, dataset_name=dataset.name, **kwargs)


@dataclass
class EvalResult:
    target: float | None  # None: an agent that takes no target (BC)
    rollout: str  # window, recurrent, or state (BC)
    returns: list[float]
    normalized: list[float]
    lengths: list[int] = field(default_factory=list)  # env steps per episode
    x_displacement: list[float] = field(default_factory=list)  # forward progress per episode (m)
    fell: list[bool] = field(default_factory=list)  # ended by termination (fell), not at the time limit
    upside_down: list[bool] = field(default_factory=list)  # ended with the root body upside down (flipped over)
    chosen: list[float] = field(default_factory=list)  # value-guided selection: each candidate's share of steps

    @classmethod
    def from_episodes(cls, target: float | None, rollout: str, episodes: Sequence[Episode],
                      normalized: Sequence[float]) -> "EvalResult":
        return cls(target, rollout, [e.ret for e in episodes], list(map(float, normalized)),
                   [e.length for e in episodes], [e.x_displacement for e in episodes], [e.fell for e in episodes],
                   [e.upside_down for e in episodes])

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EvalResult":
        """From ``to_dict`` output (evals.jsonl); records written before the episode details have none."""
        return cls(**{k: d[k] for k in ("target", "rollout", "returns", "normalized")},
                   **{k: d.get(k, []) for k in ("lengths", "x_displacement", "fell", "upside_down", "chosen")})

    @property
    def label(self) -> str:
        """``window_3600``, or ``state`` for an agent without a target (TensorBoard tags)."""
        return self.rollout if self.target is None else f"{self.rollout}_{self.target:g}"

    @property
    def normalized_mean(self) -> float:
        return float(np.mean(self.normalized))

    @property
    def normalized_std(self) -> float:
        return float(np.std(self.normalized))

    def summary(self) -> dict[str, float]:
        """Means over episodes of length and x displacement, and the fractions that fell and that ended upside down
        (NaN if unrecorded)."""
        def mean(v: list) -> float:
            return float(np.mean(v)) if v else math.nan

        return {"length_mean": mean(self.lengths), "x_displacement_mean": mean(self.x_displacement),
                "fell_fraction": mean(self.fell), "upside_down_fraction": mean(self.upside_down)}

    def to_dict(self) -> dict:
        return {**asdict(self), "normalized_mean": self.normalized_mean, "normalized_std": self.normalized_std,
                **self.summary()}


def evaluate_policies(
    dataset: DatasetInfo,
    obs_dim: int,
    act_dim: int,
    plan: Sequence[tuple[str, float | None, Policy]],
    episodes: int,
    seed: int = 0,
    progress: bool = True,
    vectorized: bool = True,
    eval_env: str | None = None,
) -> list[EvalResult]:
    """Every (rollout name, target or None, policy) of ``plan``: ``episodes`` episodes in the dataset's env (or
    in ``eval_env``, see ``env_maker``), seeds seed, seed + 1, ... (vectorized by default). Scores are normalized
    with the dataset's reference scores."""
    env_fn = env_maker(dataset, eval_env)
    env = env_fn()
    check_dims(env, obs_dim, act_dim, dataset.name, "--eval-env" if eval_env else "--env")
    results = []
    try:
        for rollout, target, policy in plan:
            desc = f"eval {rollout}" + ("" if target is None else f" R={target:g}") if progress else None
            if vectorized:
                eps = run_episodes_vectorized(env_fn, policy, target, episodes, seed=seed, desc=desc)
            else:
                eps = run_episodes(env, policy, target, episodes, seed=seed, desc=desc)
            norm = dataset.normalized_score([e.ret for e in eps])
            result = EvalResult.from_episodes(target, rollout, eps, norm)
            result.chosen = policy.chosen_shares() if hasattr(policy, "chosen_shares") else []
            results.append(result)
    finally:
        env.close()
    return results


def evaluate_agent(
    agent: AgentBundle,
    targets: Sequence[float],
    rollouts: Sequence[str],
    episodes: int,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
    vectorized: bool = True,
) -> list[EvalResult]:
    """Every (rollout, target) of the agent's plan (BC: one, see ``kinds.evaluation_plan``): ``episodes``
    episodes, seeds seed, seed + 1, ... (vectorized by default)."""
    was_training = agent.model.training
    plan = [(rollout, target, make_policy(agent.model, agent.obs_mean, agent.obs_std, agent.rtg_scale, rollout, device))
            for rollout, target in evaluation_plan(agent.model, list(targets), list(rollouts))]
    try:
        model = agent.model
        return evaluate_policies(agent.dataset, model.obs_dim, model.act_dim, plan, episodes, seed, progress, vectorized,
                                 eval_env=agent.eval_env)
    finally:
        agent.model.train(was_training)


def _range(v: Sequence[float], fmt: str) -> str:
    return f"{min(v):{fmt}}–{max(v):{fmt}}" if len(v) > 1 and min(v) != max(v) else f"{v[0]:{fmt}}"


def format_table(results: Sequence[EvalResult]) -> str:
    """Markdown table: target, rollout, return and normalized score (mean ± std), and what the episodes
    did: length (mean, range), x displacement (mean, range, metres), how many fell and how many ended upside down;
    for a value-guided agent that selects among return-to-go candidates, each candidate's share of the actions
    taken (lowest target first)."""
    chosen = any(r.chosen for r in results)
    lines = [
        "| target | rollout | episodes | return (mean ± std) | normalized (mean ± std) | length: mean (range) | "
        "x displacement m: mean (range) | fell | upside down |" + (" chosen candidate, % (low → high target) |" if chosen else ""),
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|" + ("---|" if chosen else ""),
    ]
    for r in results:
        ret = np.asarray(r.returns)
        s = r.summary()
        length = f"{s['length_mean']:.0f} ({_range(r.lengths, '.0f')})" if r.lengths else "-"
        x = f"{s['x_displacement_mean']:.1f} ({_range(r.x_displacement, '.1f')})" if r.x_displacement else "-"
        fell, flipped = (f"{sum(v)}/{len(v)}" if v else "-" for v in (r.fell, r.upside_down))
        target = "-" if r.target is None else f"{r.target:g}"
        share = (" " + (" / ".join(f"{100 * c:.0f}" for c in r.chosen) or "-") + " |") if chosen else ""
        lines.append(
            f"| {target} | {r.rollout} | {len(ret)} | {ret.mean():.1f} ± {ret.std():.1f} | "
            f"{r.normalized_mean:.1f} ± {r.normalized_std:.1f} | {length} | {x} | {fell} | {flipped} |{share}"
        )
    return "\n".join(lines)
