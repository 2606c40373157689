"""Evaluate an agent: episodes per (rollout mode, target return), raw and normalized returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from seqrl.datasets.trajectories import DatasetInfo
from seqrl.envs import check_dims, make_env, run_episodes, run_episodes_vectorized
from seqrl.envs.evaluation import Policy

from .checkpoint import AgentBundle
from .policy import Rollout, SequencePolicy


@dataclass
class EvalResult:
    target: float
    rollout: str
    returns: list[float]
    normalized: list[float]

    @property
    def normalized_mean(self) -> float:
        return float(np.mean(self.normalized))

    @property
    def normalized_std(self) -> float:
        return float(np.std(self.normalized))

    def to_dict(self) -> dict:
        return {**asdict(self), "normalized_mean": self.normalized_mean, "normalized_std": self.normalized_std}


def evaluate_policies(
    dataset: DatasetInfo,
    obs_dim: int,
    act_dim: int,
    policies: Mapping[str, Policy],
    targets: Sequence[float],
    episodes: int,
    seed: int = 0,
    progress: bool = True,
    vectorized: bool = True,
) -> list[EvalResult]:
    """Every (rollout, target) of ``policies`` (rollout name -> policy): ``episodes`` episodes in the
    dataset's env, seeds seed, seed + 1, ... (vectorized by default)."""
    env = make_env(dataset)
    check_dims(env, obs_dim, act_dim, dataset.name)
    results = []
    try:
        for rollout, policy in policies.items():
            for target in targets:
                desc = f"eval {rollout} R={target:g}" if progress else None
                if vectorized:
                    env_fn = lambda: make_env(dataset)  # noqa: E731
                    returns = run_episodes_vectorized(env_fn, policy, target, episodes, seed=seed, desc=desc)
                else:
                    returns = run_episodes(env, policy, target, episodes, seed=seed, desc=desc)
                norm = dataset.normalized_score(returns).tolist()
                results.append(EvalResult(float(target), rollout, returns, norm))
    finally:
        env.close()
    return results


def evaluate_agent(
    agent: AgentBundle,
    targets: Sequence[float],
    rollouts: Sequence[Rollout],
    episodes: int,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
    vectorized: bool = True,
) -> list[EvalResult]:
    """Every (rollout, target): ``episodes`` episodes, seeds seed, seed + 1, ... (vectorized by default)."""
    was_training = agent.model.training
    policies = {r: SequencePolicy(agent.model, agent.obs_mean, agent.obs_std, agent.rtg_scale, r, device) for r in rollouts}
    try:
        cfg = agent.model.cfg
        return evaluate_policies(agent.dataset, cfg.obs_dim, cfg.act_dim, policies, targets, episodes, seed, progress,
                                 vectorized)
    finally:
        agent.model.train(was_training)


def format_table(results: Sequence[EvalResult]) -> str:
    """Markdown table: target, rollout, raw return and normalized score (mean ± std)."""
    lines = [
        "| target | rollout | episodes | return (mean ± std) | normalized (mean ± std) |",
        "|---:|---|---:|---:|---:|",
    ]
    for r in results:
        ret = np.asarray(r.returns)
        lines.append(
            f"| {r.target:g} | {r.rollout} | {len(ret)} | {ret.mean():.1f} ± {ret.std():.1f} | "
            f"{r.normalized_mean:.1f} ± {r.normalized_std:.1f} |"
        )
    return "\n".join(lines)
