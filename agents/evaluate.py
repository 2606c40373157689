"""Evaluate an agent: episodes per (rollout mode, target return), raw and normalized returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch

from seqrl.envs import check_dims, make_env, run_episodes, run_episodes_vectorized

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
    env = make_env(agent.dataset)
    check_dims(env, agent.model.cfg.obs_dim, agent.model.cfg.act_dim, agent.dataset.name)
    was_training = agent.model.training
    results = []
    try:
        for rollout in rollouts:
            policy = SequencePolicy(agent.model, agent.obs_mean, agent.obs_std, agent.rtg_scale, rollout, device)
            for target in targets:
                desc = f"eval {rollout} R={target:g}" if progress else None
                if vectorized:
                    env_fn = lambda: make_env(agent.dataset)  # noqa: E731
                    returns = run_episodes_vectorized(env_fn, policy, target, episodes, seed=seed, desc=desc)
                else:
                    returns = run_episodes(env, policy, target, episodes, seed=seed, desc=desc)
                norm = agent.dataset.normalized_score(returns).tolist()
                results.append(EvalResult(float(target), rollout, returns, norm))
    finally:
        env.close()
        agent.model.train(was_training)
    return results


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
